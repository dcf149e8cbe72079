// Run-time loading of libvulkan.so.1 (see vk.hpp for why).
#include "runtime/vk.hpp"

#include <dlfcn.h>

#include <mutex>

#define KWAAI_VK_DEFINE(name) PFN_##name name = nullptr;
KWAAI_VK_GLOBAL_FUNCTIONS(KWAAI_VK_DEFINE)
KWAAI_VK_INSTANCE_FUNCTIONS(KWAAI_VK_DEFINE)
KWAAI_VK_INSTANCE_EXT_FUNCTIONS(KWAAI_VK_DEFINE)
KWAAI_VK_DEVICE_FUNCTIONS(KWAAI_VK_DEFINE)
#undef KWAAI_VK_DEFINE

namespace kwaai::runtime {
namespace {

PFN_vkGetInstanceProcAddr g_get_instance_proc = nullptr;
const char* g_load_error = nullptr;
std::once_flag g_once;
std::mutex g_instance_mu;

void open_loader() {
  // Kept open for the life of the process: function pointers into it must stay valid.
  void* lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) lib = dlopen("libvulkan.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    g_load_error = "the Vulkan loader libvulkan.so.1 is not installed";
    return;
  }
  g_get_instance_proc =
      reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
  if (!g_get_instance_proc) {
    g_load_error = "libvulkan.so.1 has no vkGetInstanceProcAddr";
    return;
  }
#define KWAAI_VK_LOAD_GLOBAL(name) \
  name = reinterpret_cast<PFN_##name>(g_get_instance_proc(VK_NULL_HANDLE, #name));
  KWAAI_VK_GLOBAL_FUNCTIONS(KWAAI_VK_LOAD_GLOBAL)
#undef KWAAI_VK_LOAD_GLOBAL
  if (!vkCreateInstance || !vkEnumerateInstanceExtensionProperties ||
      !vkEnumerateInstanceLayerProperties) {
    g_load_error = "libvulkan.so.1 lacks the Vulkan 1.0 global entry points";
    return;
  }
}

}  // namespace

bool load_vulkan_loader(const char** why) {
  std::call_once(g_once, open_loader);
  if (g_load_error && why) *why = g_load_error;
  return g_load_error == nullptr;
}

void load_vulkan_instance(VkInstance instance) {
  std::lock_guard lock(g_instance_mu);
#define KWAAI_VK_LOAD(name) \
  name = reinterpret_cast<PFN_##name>(g_get_instance_proc(instance, #name));
  KWAAI_VK_INSTANCE_FUNCTIONS(KWAAI_VK_LOAD)
  KWAAI_VK_INSTANCE_EXT_FUNCTIONS(KWAAI_VK_LOAD)
  KWAAI_VK_DEVICE_FUNCTIONS(KWAAI_VK_LOAD)
#undef KWAAI_VK_LOAD
}

}  // namespace kwaai::runtime
