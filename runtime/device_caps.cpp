#include "runtime/device_caps.hpp"

#include <cstdio>

#include "kernels/kernel_table.hpp"
#include "runtime/vk.hpp"

namespace kwaai::runtime {

const char* to_string(DeviceType t) {
  switch (t) {
    case DeviceType::IntegratedGpu:
      return "integrated-gpu";
    case DeviceType::DiscreteGpu:
      return "discrete-gpu";
    case DeviceType::VirtualGpu:
      return "virtual-gpu";
    case DeviceType::Cpu:
      return "cpu";
    case DeviceType::Other:
      break;
  }
  return "other";
}

std::string DeviceCaps::api_version_string() const {
  return std::to_string(VK_API_VERSION_MAJOR(api_version)) + "." +
         std::to_string(VK_API_VERSION_MINOR(api_version)) + "." +
         std::to_string(VK_API_VERSION_PATCH(api_version));
}

std::string DeviceCaps::pipeline_cache_uuid_hex() const {
  std::string s;
  char buf[3];
  for (std::uint8_t b : pipeline_cache_uuid) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    s += buf;
  }
  return s;
}

std::uint64_t DeviceCaps::device_local_bytes() const {
  std::uint64_t total = 0;
  for (const auto& h : heaps)
    if (h.device_local) total += h.size;
  return total;
}

bool DeviceCaps::subgroup_in_compute() const {
  return (subgroup_stages & VK_SHADER_STAGE_COMPUTE_BIT) != 0 &&
         (subgroup_operations & VK_SUBGROUP_FEATURE_BASIC_BIT) != 0;
}

bool DeviceCaps::subgroup_arithmetic() const {
  const std::uint32_t need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT |
                             VK_SUBGROUP_FEATURE_BALLOT_BIT;
  return subgroup_in_compute() && (subgroup_operations & need) == need;
}

bool DeviceCaps::subgroup_shuffle() const {
  const std::uint32_t need =
      VK_SUBGROUP_FEATURE_SHUFFLE_BIT | VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT;
  return subgroup_in_compute() && (subgroup_operations & need) == need;
}

std::uint32_t DeviceCaps::kernel_features() const {
  std::uint32_t f = 0;
  if (shader_float16) f |= kernels::kFp16;
  if (storage_buffer_16bit) f |= kernels::kStorage16;
  if (storage_buffer_8bit) f |= kernels::kStorage8;
  if (subgroup_arithmetic()) f |= kernels::kSubgroup;
  if (subgroup_shuffle()) f |= kernels::kSubgroupShuffle;
  if (shader_int8) f |= kernels::kInt8;
  if (shader_int16) f |= kernels::kInt16;
  if (shader_int64) f |= kernels::kInt64;
  return f;
}

std::string DeviceCaps::vendor() const {
  switch (vendor_id) {
    case 0x1002:
      return "AMD";
    case 0x10de:
      return "NVIDIA";
    case 0x8086:
      return "Intel";
    case 0x13b5:
      return "ARM";
    case 0x5143:
      return "Qualcomm";
    case 0x106b:
      return "Apple";
    case 0x10005:
      return "Mesa";
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%04x", vendor_id);
  return buf;
}

}  // namespace kwaai::runtime
