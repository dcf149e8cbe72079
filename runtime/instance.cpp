#include "runtime/instance.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "runtime/error.hpp"

namespace kwaai::runtime {

void ValidationLog::add(std::string msg) {
  count_.fetch_add(1);
  std::lock_guard lock(mu_);
  if (messages_.size() < kKeep) messages_.push_back(std::move(msg));
}

std::vector<std::string> ValidationLog::messages() const {
  std::lock_guard lock(mu_);
  return messages_;
}

void ValidationLog::clear() {
  std::lock_guard lock(mu_);
  messages_.clear();
  count_.store(0);
}

}  // namespace kwaai::runtime

namespace kwaai::runtime::detail {
namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                VkDebugUtilsMessageTypeFlagsEXT types,
                                                const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                void* user) {
  const char* text = data && data->pMessage ? data->pMessage : "(no message)";
  const bool counted = (types & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                                 VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)) != 0 &&
                       severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
  if (counted) {
    static_cast<ValidationLog*>(user)->add(text);
    spdlog::error("vulkan validation: {}", text);
  } else {
    spdlog::debug("vulkan: {}", text);
  }
  return VK_FALSE;  // never abort the call: the test decides what a message means
}

bool has_layer(const char* name) {
  std::uint32_t n = 0;
  if (vkEnumerateInstanceLayerProperties(&n, nullptr) != VK_SUCCESS) return false;
  std::vector<VkLayerProperties> layers(n);
  if (vkEnumerateInstanceLayerProperties(&n, layers.data()) != VK_SUCCESS) return false;
  return std::any_of(layers.begin(), layers.begin() + n, [&](const VkLayerProperties& l) {
    return std::strcmp(l.layerName, name) == 0;
  });
}

bool has_instance_extension(const char* layer, const char* ext) {
  std::uint32_t n = 0;
  if (vkEnumerateInstanceExtensionProperties(layer, &n, nullptr) != VK_SUCCESS) return false;
  std::vector<VkExtensionProperties> exts(n);
  if (vkEnumerateInstanceExtensionProperties(layer, &n, exts.data()) != VK_SUCCESS) return false;
  return std::any_of(exts.begin(), exts.begin() + n, [&](const VkExtensionProperties& e) {
    return std::strcmp(e.extensionName, ext) == 0;
  });
}

}  // namespace

Instance::Instance(bool validation, bool sync_validation) {
  const char* why = nullptr;
  if (!load_vulkan_loader(&why)) throw NoVulkanDevice(std::string("no Vulkan: ") + why);

  std::uint32_t loader_api = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion) vkEnumerateInstanceVersion(&loader_api);
  if (loader_api < VK_API_VERSION_1_2)
    throw NoVulkanDevice("the Vulkan loader supports API " +
                         std::to_string(VK_API_VERSION_MINOR(loader_api)) +
                         ".x; kwaainet needs Vulkan 1.2");
  api_version_ = std::min<std::uint32_t>(loader_api, VK_API_VERSION_1_3);

  std::vector<const char*> layers, exts;
  VkDebugUtilsMessengerCreateInfoEXT dbg{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  dbg.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                        VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  dbg.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  dbg.pfnUserCallback = on_debug_message;
  dbg.pUserData = log_.get();
  VkValidationFeaturesEXT vfeat{VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
  const VkValidationFeatureEnableEXT sync_enable =
      VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;

  const void* pnext = nullptr;
  if (validation) {
    if (!has_layer(kValidationLayer))
      throw std::runtime_error(std::string("Vulkan validation was requested but ") +
                               kValidationLayer +
                               " is not installed (Debian: vulkan-validationlayers)");
    if (!has_instance_extension(nullptr, VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
      throw std::runtime_error("Vulkan validation needs VK_EXT_debug_utils, which is missing");
    layers.push_back(kValidationLayer);
    exts.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    pnext = &dbg;
    if (sync_validation &&
        has_instance_extension(kValidationLayer, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
      exts.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
      vfeat.enabledValidationFeatureCount = 1;
      vfeat.pEnabledValidationFeatures = &sync_enable;
      vfeat.pNext = &dbg;
      pnext = &vfeat;
    }
  }

  // MoltenVK (Apple GPUs) is a "portability" implementation: the loader lists it only when the
  // instance asks for portability devices, so without this an Apple GPU does not enumerate.
  VkInstanceCreateFlags flags = 0;
  if (has_instance_extension(nullptr, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
    exts.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
    flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
  }

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "kwaainet";
  app.pEngineName = "kwaainet";
  app.apiVersion = api_version_;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pNext = pnext;
  ci.flags = flags;
  ci.pApplicationInfo = &app;
  ci.enabledLayerCount = static_cast<std::uint32_t>(layers.size());
  ci.ppEnabledLayerNames = layers.data();
  ci.enabledExtensionCount = static_cast<std::uint32_t>(exts.size());
  ci.ppEnabledExtensionNames = exts.data();
  const VkResult r = vkCreateInstance(&ci, nullptr, &instance_);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
    throw NoVulkanDevice(std::string("no Vulkan driver accepted the instance (") +
                         vk_result_name(r) + ")");
  KWAAI_VK_CHECK(r);
  load_vulkan_instance(instance_);

  if (validation) {
    if (!vkCreateDebugUtilsMessengerEXT) {
      vkDestroyInstance(instance_, nullptr);
      throw std::runtime_error("vkCreateDebugUtilsMessengerEXT is missing");
    }
    const VkResult mr = vkCreateDebugUtilsMessengerEXT(instance_, &dbg, nullptr, &messenger_);
    if (mr != VK_SUCCESS) {
      vkDestroyInstance(instance_, nullptr);
      throw_vk_error(mr, "vkCreateDebugUtilsMessengerEXT", __FILE__, __LINE__);
    }
  }
}

Instance::~Instance() {
  if (messenger_ && vkDestroyDebugUtilsMessengerEXT)
    vkDestroyDebugUtilsMessengerEXT(instance_, messenger_, nullptr);
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

std::vector<VkPhysicalDevice> Instance::physical_devices() const {
  std::uint32_t n = 0;
  KWAAI_VK_CHECK(vkEnumeratePhysicalDevices(instance_, &n, nullptr));
  std::vector<VkPhysicalDevice> devs(n);
  if (n) KWAAI_VK_CHECK(vkEnumeratePhysicalDevices(instance_, &n, devs.data()));
  devs.resize(n);
  if (devs.empty()) throw NoVulkanDevice("the Vulkan loader found no device (no driver/ICD)");
  return devs;
}

}  // namespace kwaai::runtime::detail
