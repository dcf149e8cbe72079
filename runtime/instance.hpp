// Internal: the VkInstance (+ optional validation layer and debug messenger) and the record of
// validation messages that tests assert to be empty.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/validation_log.hpp"
#include "runtime/vk.hpp"

namespace kwaai::runtime::detail {

class Instance {
 public:
  // Throws NoVulkanDevice when the loader is missing or no driver accepts the instance;
  // std::runtime_error when validation is asked for but the layer is not installed.
  Instance(bool validation, bool sync_validation);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  VkInstance handle() const { return instance_; }
  std::uint32_t api_version() const { return api_version_; }
  bool validation() const { return messenger_ != VK_NULL_HANDLE; }
  ValidationLog& log() { return *log_; }
  const std::shared_ptr<ValidationLog>& shared_log() const { return log_; }
  // Throws NoVulkanDevice when there is none.
  std::vector<VkPhysicalDevice> physical_devices() const;

 private:
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  std::uint32_t api_version_ = VK_API_VERSION_1_2;
  std::shared_ptr<ValidationLog> log_ = std::make_shared<ValidationLog>();
};

}  // namespace kwaai::runtime::detail
