#include "runtime/error.hpp"

#include <string>

namespace kwaai::runtime {

const char* vk_result_name(VkResult r) {
  switch (r) {
#define KWAAI_CASE(x) \
  case x:             \
    return #x;
    KWAAI_CASE(VK_SUCCESS)
    KWAAI_CASE(VK_NOT_READY)
    KWAAI_CASE(VK_TIMEOUT)
    KWAAI_CASE(VK_EVENT_SET)
    KWAAI_CASE(VK_EVENT_RESET)
    KWAAI_CASE(VK_INCOMPLETE)
    KWAAI_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    KWAAI_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    KWAAI_CASE(VK_ERROR_INITIALIZATION_FAILED)
    KWAAI_CASE(VK_ERROR_DEVICE_LOST)
    KWAAI_CASE(VK_ERROR_MEMORY_MAP_FAILED)
    KWAAI_CASE(VK_ERROR_LAYER_NOT_PRESENT)
    KWAAI_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    KWAAI_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    KWAAI_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    KWAAI_CASE(VK_ERROR_TOO_MANY_OBJECTS)
    KWAAI_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    KWAAI_CASE(VK_ERROR_FRAGMENTED_POOL)
    KWAAI_CASE(VK_ERROR_UNKNOWN)
    KWAAI_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
    KWAAI_CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    KWAAI_CASE(VK_ERROR_FRAGMENTATION)
    KWAAI_CASE(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
    KWAAI_CASE(VK_PIPELINE_COMPILE_REQUIRED)
    KWAAI_CASE(VK_ERROR_VALIDATION_FAILED_EXT)
    KWAAI_CASE(VK_ERROR_INVALID_SHADER_NV)
#undef KWAAI_CASE
    default:
      return nullptr;
  }
}

VulkanError::VulkanError(VkResult result, const std::string& what)
    : std::runtime_error(what), result_(result) {}

void throw_vk_error(VkResult r, const char* call, const char* file, int line) {
  const char* name = vk_result_name(r);
  std::string rs = name ? name : "VkResult(" + std::to_string(static_cast<int>(r)) + ")";
  std::string msg = std::string(file) + ":" + std::to_string(line) + ": " + call + " -> " + rs;
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY) throw OutOfDeviceMemory(msg);
  throw VulkanError(r, msg);
}

}  // namespace kwaai::runtime
