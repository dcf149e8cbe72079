// Just enough SPIR-V reflection to check the host/shader contract of a compute kernel:
// descriptor bindings (with set numbers), push-constant block size, local size (literal or
// through specialization constants) and the spec constant ids. No Vulkan dependency.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace kwaai::runtime {

struct SpirvBinding {
  std::uint32_t set = 0;
  std::uint32_t binding = 0;
};

struct SpirvInfo {
  std::vector<SpirvBinding> bindings;     // one per descriptor variable, sorted (set, binding)
  std::uint32_t push_constant_bytes = 0;  // 0 when the module has no push-constant block
  // Local size: literal values, or for components set through spec constants, their default.
  std::array<std::uint32_t, 3> local_size{1, 1, 1};
  // Spec constant id per local-size component when it is specializable (local_size_x_id ...).
  std::array<std::optional<std::uint32_t>, 3> local_size_spec_id{};
  std::vector<std::uint32_t> spec_constant_ids;  // every SpecId in the module
};

// Throws std::invalid_argument (with the word offset) on a malformed module.
SpirvInfo reflect_spirv(std::span<const std::uint32_t> words);

}  // namespace kwaai::runtime
