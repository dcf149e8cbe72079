// Errors of the Vulkan runtime. Every failing Vulkan call becomes a VulkanError carrying the
// call text, the VkResult name and file:line, so a log line is enough to find the failing op.
#pragma once

#include <stdexcept>
#include <string>

#include "runtime/vk.hpp"

namespace kwaai::runtime {

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc.; nullptr for values this build does not know.
const char* vk_result_name(VkResult r);

class VulkanError : public std::runtime_error {
 public:
  VulkanError(VkResult result, const std::string& what);
  VkResult result() const { return result_; }

 private:
  VkResult result_;
};

// No loader (libvulkan.so.1 missing), no driver, or no device at the requested index.
class NoVulkanDevice : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An allocation did not fit: device memory exhausted, or the configured budget reached, or a
// request larger than the device can allocate at all. The message names size, limit, usage.
class OutOfDeviceMemory : public VulkanError {
 public:
  OutOfDeviceMemory(const std::string& what) : VulkanError(VK_ERROR_OUT_OF_DEVICE_MEMORY, what) {}
};

// A kernel needs a device feature that the selected device lacks.
class UnsupportedKernel : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_vk_error(VkResult r, const char* call, const char* file, int line);

}  // namespace kwaai::runtime

// Wraps a Vulkan call returning VkResult; throws VulkanError("<file>:<line>: <call> -> <name>")
// on anything but VK_SUCCESS (VK_INCOMPLETE etc. are errors here: callers size arrays first).
#define KWAAI_VK_CHECK(call)                                                    \
  do {                                                                          \
    const VkResult kwaai_vk_r_ = (call);                                        \
    if (kwaai_vk_r_ != VK_SUCCESS)                                              \
      ::kwaai::runtime::throw_vk_error(kwaai_vk_r_, #call, __FILE__, __LINE__); \
  } while (0)
