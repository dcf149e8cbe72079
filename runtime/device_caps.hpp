// What one Vulkan device can do: identity, memory, the features and limits the kernels use,
// and driver quirks. Plain data (no Vulkan handles) so the CLI and calibration can print and
// store it. Filled by Context::enumerate() / Context::caps().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kwaai::runtime {

enum class DeviceType { Other, IntegratedGpu, DiscreteGpu, VirtualGpu, Cpu };
const char* to_string(DeviceType t);  // "discrete-gpu", "cpu", ...

struct MemoryHeap {
  std::uint64_t size = 0;
  bool device_local = false;
};

struct MemoryType {
  std::uint32_t heap_index = 0;
  bool device_local = false;
  bool host_visible = false;
  bool host_coherent = false;
  bool host_cached = false;
};

// The device extension a portability implementation must have enabled (a beta extension, so
// not in the core headers).
inline constexpr const char* kPortabilitySubsetExtension = "VK_KHR_portability_subset";

struct DeviceCaps {
  std::uint32_t index = 0;  // position in vkEnumeratePhysicalDevices order (selection key)
  std::string name;
  DeviceType type = DeviceType::Other;
  std::uint32_t vendor_id = 0;
  std::uint32_t device_id = 0;
  std::string driver_name;  // VkPhysicalDeviceDriverProperties::driverName ("llvmpipe")
  std::string driver_info;  // driverInfo ("Mesa 22.3.6 (LLVM 15.0.6)")
  std::uint32_t driver_version = 0;
  std::uint32_t api_version = 0;           // VK_MAKE_API_VERSION packed
  std::string api_version_string() const;  // "1.3.230"
  std::uint8_t pipeline_cache_uuid[16] = {};
  std::string pipeline_cache_uuid_hex() const;

  std::vector<MemoryHeap> heaps;
  std::vector<MemoryType> memory_types;
  std::uint64_t device_local_bytes() const;  // sum of device-local heaps

  // Features (what the device offers; Context enables those present at device creation).
  bool shader_float16 = false;  // fp16 arithmetic
  bool shader_int8 = false;     // int8 arithmetic
  bool shader_int16 = false;
  bool shader_int64 = false;
  bool storage_buffer_16bit = false;
  bool storage_buffer_8bit = false;
  std::uint32_t subgroup_size = 0;
  std::uint32_t subgroup_stages = 0;      // VkShaderStageFlags
  std::uint32_t subgroup_operations = 0;  // VkSubgroupFeatureFlags
  bool subgroup_in_compute() const;
  bool subgroup_arithmetic() const;     // basic + arithmetic + ballot, in compute
  bool subgroup_shuffle() const;        // shuffle + shuffle-relative, in compute
  std::uint32_t min_subgroup_size = 0;  // subgroup size control (0 if not supported)
  std::uint32_t max_subgroup_size = 0;

  // Limits.
  std::uint64_t max_storage_buffer_range = 0;
  std::uint64_t max_memory_allocation_size = 0;
  std::uint64_t max_buffer_size = 0;  // maintenance4; 0 when not reported
  std::uint32_t max_compute_work_group_count[3] = {};
  std::uint32_t max_compute_work_group_size[3] = {};
  std::uint32_t max_compute_work_group_invocations = 0;
  std::uint32_t max_compute_shared_memory_size = 0;
  std::uint32_t max_push_constants_size = 0;
  // Storage buffers one compute shader may bind (the spec guarantees only 4; a kernel with more
  // bindings is unsupported on a device below its count, and the op falls back).
  std::uint32_t max_storage_buffers_per_stage = 0;
  std::uint64_t min_storage_buffer_offset_alignment = 0;
  std::uint64_t non_coherent_atom_size = 0;
  float timestamp_period_ns = 0;           // nanoseconds per timestamp tick
  bool timestamps_supported = false;       // the compute queue family reports valid bits > 0
  std::uint32_t timestamp_valid_bits = 0;  // of that queue family (64 = no wrap-around)

  // Device class and quirks: flags that drive choices (device selection, kernel variants).
  bool is_cpu_device = false;  // lavapipe/SwiftShader: "device" memory is host memory
  bool is_lavapipe = false;
  bool portability_subset = false;  // MoltenVK & co: VK_KHR_portability_subset must be enabled
  // vendor_id as a name ("NVIDIA", "AMD", "Intel", "Apple", "ARM", "Qualcomm", "Mesa" for the
  // software devices), else the id in hex.
  std::string vendor() const;

  // Bit set of kernels::Feature this device supports (for KernelInfo::features checks).
  std::uint32_t kernel_features() const;
};

}  // namespace kwaai::runtime
