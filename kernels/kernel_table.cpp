// Lookup over the generated table (kernel_table_data.cpp in the build directory).
#include "kernels/kernel_table.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace kwaai::kernels {
namespace detail {
extern const KernelInfo kTable[];
extern const std::size_t kTableSize;
}  // namespace detail

std::span<const KernelInfo> all_kernels() {
  return {detail::kTable, detail::kTableSize};
}

const KernelInfo& kernel(std::string_view name) {
  const auto table = all_kernels();
  // The generator sorts by name, so a binary search finds it.
  auto it = std::lower_bound(table.begin(), table.end(), name,
                             [](const KernelInfo& k, std::string_view n) { return k.name < n; });
  if (it == table.end() || it->name != name)
    throw std::out_of_range("kernel '" + std::string(name) +
                            "' is not in the embedded kernel table (kernels/kernels.cmake)");
  return *it;
}

std::string_view feature_name(Feature f) {
  switch (f) {
    case kFp16:
      return "fp16";
    case kStorage16:
      return "storage16";
    case kStorage8:
      return "storage8";
    case kSubgroup:
      return "subgroup";
    case kSubgroupShuffle:
      return "subgroup_shuffle";
    case kInt8:
      return "int8";
    case kInt16:
      return "int16";
    case kInt64:
      return "int64";
  }
  return "unknown";
}

}  // namespace kwaai::kernels
