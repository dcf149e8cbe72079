#include "runtime/device_query.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace kwaai::runtime::detail {

void FeatureChain::link() {
  core.pNext = &v11;
  v11.pNext = &v12;
  v12.pNext = has_v13 ? &v13 : nullptr;
  v13.pNext = nullptr;
}

void FeatureChain::query(VkPhysicalDevice pd, std::uint32_t api_version) {
  has_v13 = VK_API_VERSION_MINOR(api_version) >= 3 || VK_API_VERSION_MAJOR(api_version) > 1;
  link();
  vkGetPhysicalDeviceFeatures2(pd, &core);
  link();
}

void FeatureChain::select_from(const FeatureChain& a) {
  has_v13 = a.has_v13;
  core.features.shaderInt16 = a.core.features.shaderInt16;
  core.features.shaderInt64 = a.core.features.shaderInt64;
  v11.storageBuffer16BitAccess = a.v11.storageBuffer16BitAccess;
  v11.uniformAndStorageBuffer16BitAccess = a.v11.uniformAndStorageBuffer16BitAccess;
  v12.storageBuffer8BitAccess = a.v12.storageBuffer8BitAccess;
  v12.uniformAndStorageBuffer8BitAccess = a.v12.uniformAndStorageBuffer8BitAccess;
  v12.shaderFloat16 = a.v12.shaderFloat16;
  v12.shaderInt8 = a.v12.shaderInt8;
  v12.hostQueryReset = a.v12.hostQueryReset;
  v12.vulkanMemoryModel = a.v12.vulkanMemoryModel;
  v12.vulkanMemoryModelDeviceScope = a.v12.vulkanMemoryModelDeviceScope;
  v12.shaderSubgroupExtendedTypes = a.v12.shaderSubgroupExtendedTypes;
  if (has_v13) {
    v13.subgroupSizeControl = a.v13.subgroupSizeControl;
    v13.computeFullSubgroups = a.v13.computeFullSubgroups;
    v13.maintenance4 = a.v13.maintenance4;
  }
  link();
}

DeviceCaps query_caps(VkPhysicalDevice pd, std::uint32_t index, std::uint32_t instance_api) {
  DeviceCaps c;
  c.index = index;

  VkPhysicalDeviceProperties base{};
  vkGetPhysicalDeviceProperties(pd, &base);
  const std::uint32_t api = std::min(base.apiVersion, instance_api);
  const bool v13 = VK_API_VERSION_MINOR(api) >= 3;
  const bool v12 = VK_API_VERSION_MINOR(api) >= 2;

  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceMaintenance4Properties m4{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlProperties ssc{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  props.pNext = &sub;
  if (v12) sub.pNext = &drv;
  if (v13) {
    drv.pNext = &m4;
    m4.pNext = &ssc;
  }
  vkGetPhysicalDeviceProperties2(pd, &props);
  const VkPhysicalDeviceProperties& p = props.properties;

  c.name = p.deviceName;
  switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      c.type = DeviceType::IntegratedGpu;
      break;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      c.type = DeviceType::DiscreteGpu;
      break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      c.type = DeviceType::VirtualGpu;
      break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      c.type = DeviceType::Cpu;
      break;
    default:
      c.type = DeviceType::Other;
      break;
  }
  c.vendor_id = p.vendorID;
  c.device_id = p.deviceID;
  c.driver_version = p.driverVersion;
  c.api_version = p.apiVersion;
  std::memcpy(c.pipeline_cache_uuid, p.pipelineCacheUUID, VK_UUID_SIZE);
  if (v12) {
    c.driver_name = drv.driverName;
    c.driver_info = drv.driverInfo;
  }

  VkPhysicalDeviceMemoryProperties mem{};
  vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  for (std::uint32_t i = 0; i < mem.memoryHeapCount; ++i)
    c.heaps.push_back({mem.memoryHeaps[i].size,
                       (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0});
  for (std::uint32_t i = 0; i < mem.memoryTypeCount; ++i) {
    const auto f = mem.memoryTypes[i].propertyFlags;
    c.memory_types.push_back({mem.memoryTypes[i].heapIndex,
                              (f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) != 0,
                              (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) != 0,
                              (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0,
                              (f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) != 0});
  }

  FeatureChain feats;
  feats.query(pd, api);
  c.shader_float16 = v12 && feats.v12.shaderFloat16;
  c.shader_int8 = v12 && feats.v12.shaderInt8;
  c.shader_int16 = feats.core.features.shaderInt16;
  c.shader_int64 = feats.core.features.shaderInt64;
  c.storage_buffer_16bit = feats.v11.storageBuffer16BitAccess;
  c.storage_buffer_8bit = v12 && feats.v12.storageBuffer8BitAccess;
  c.subgroup_size = sub.subgroupSize;
  c.subgroup_stages = sub.supportedStages;
  c.subgroup_operations = sub.supportedOperations;
  if (v13 && feats.v13.subgroupSizeControl) {
    c.min_subgroup_size = ssc.minSubgroupSize;
    c.max_subgroup_size = ssc.maxSubgroupSize;
  }

  const auto& l = p.limits;
  c.max_storage_buffer_range = l.maxStorageBufferRange;
  c.max_storage_buffers_per_stage = l.maxPerStageDescriptorStorageBuffers;
  c.max_buffer_size = v13 ? m4.maxBufferSize : 0;
  c.max_memory_allocation_size = 0;
  {
    VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    VkPhysicalDeviceMaintenance3Properties m3{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    p2.pNext = &m3;
    vkGetPhysicalDeviceProperties2(pd, &p2);
    c.max_memory_allocation_size = m3.maxMemoryAllocationSize;
  }
  for (int i = 0; i < 3; ++i) {
    c.max_compute_work_group_count[i] = l.maxComputeWorkGroupCount[i];
    c.max_compute_work_group_size[i] = l.maxComputeWorkGroupSize[i];
  }
  c.max_compute_work_group_invocations = l.maxComputeWorkGroupInvocations;
  c.max_compute_shared_memory_size = l.maxComputeSharedMemorySize;
  c.max_push_constants_size = l.maxPushConstantsSize;
  c.min_storage_buffer_offset_alignment = l.minStorageBufferOffsetAlignment;
  c.non_coherent_atom_size = l.nonCoherentAtomSize;
  c.timestamp_period_ns = l.timestampPeriod;

  // Timestamps are usable when the compute queue family reports valid bits.
  std::uint32_t qn = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, nullptr);
  std::vector<VkQueueFamilyProperties> qf(qn);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, qf.data());
  for (const auto& q : qf)
    if ((q.queueFlags & VK_QUEUE_COMPUTE_BIT) && q.timestampValidBits > 0) {
      c.timestamps_supported = l.timestampPeriod > 0;
      c.timestamp_valid_bits = q.timestampValidBits;
      break;
    }

  c.is_cpu_device = c.type == DeviceType::Cpu;
  c.is_lavapipe = c.driver_name == "llvmpipe" || c.name.find("llvmpipe") != std::string::npos;
  std::uint32_t ne = 0;
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &ne, nullptr);
  std::vector<VkExtensionProperties> de(ne);
  if (ne > 0 && vkEnumerateDeviceExtensionProperties(pd, nullptr, &ne, de.data()) == VK_SUCCESS)
    for (std::uint32_t i = 0; i < ne; ++i)
      if (std::strcmp(de[i].extensionName, kPortabilitySubsetExtension) == 0)
        c.portability_subset = true;
  return c;
}

}  // namespace kwaai::runtime::detail
