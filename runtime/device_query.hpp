// Internal: filling DeviceCaps from a VkPhysicalDevice, and the feature chain Context enables.
#pragma once

#include "runtime/device_caps.hpp"
#include "runtime/vk.hpp"

namespace kwaai::runtime::detail {

// instance_api: the apiVersion the instance was created with; 1.3 structures are only used
// when both it and the device are >= 1.3.
DeviceCaps query_caps(VkPhysicalDevice pd, std::uint32_t index, std::uint32_t instance_api);

// The Vulkan 1.1/1.2/1.3 feature structs, chained (pNext) and owned together so the chain's
// pointers stay valid. query() asks the device what it has; enable_for() keeps only what the
// kernels use.
struct FeatureChain {
  VkPhysicalDeviceFeatures2 core{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features v11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features v12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan13Features v13{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
  bool has_v13 = false;

  FeatureChain() = default;
  FeatureChain(const FeatureChain&) = delete;
  FeatureChain& operator=(const FeatureChain&) = delete;
  void link();  // (re)builds the pNext chain
  void query(VkPhysicalDevice pd, std::uint32_t api_version);
  // From `available`, the subset the kernels and runtime use.
  void select_from(const FeatureChain& available);
};

}  // namespace kwaai::runtime::detail
