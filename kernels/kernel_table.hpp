// The embedded kernel table: every GLSL compute shader variant listed in kernels/kernels.cmake,
// compiled to SPIR-V (glslc, Vulkan 1.2 target), validated with spirv-val at build time and
// embedded in the binary. The table itself is a .cpp generated into the build directory by
// kernels/gen_kernel_table.cpp; this header is the stable interface to it.
//
// binding_count and push_constant_bytes are what the host promises to bind/push; a test
// (tests/runtime/kernel_table_test.cpp) reflects every module and checks the module agrees,
// and runtime::Context re-checks it when it creates a pipeline.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace kwaai::kernels {

// Device features a variant needs (bit set in KernelInfo::features). Names in kernels.cmake:
// fp16 storage16 storage8 subgroup subgroup_shuffle int8 int16 int64.
enum Feature : std::uint32_t {
  kFp16 = 1u << 0,             // shaderFloat16: fp16 arithmetic
  kStorage16 = 1u << 1,        // storageBuffer16BitAccess: 16-bit loads/stores in SSBOs
  kStorage8 = 1u << 2,         // storageBuffer8BitAccess: 8-bit loads/stores in SSBOs
  kSubgroup = 1u << 3,         // subgroup basic + arithmetic + ballot in compute shaders
  kSubgroupShuffle = 1u << 4,  // subgroup shuffle (+ shuffle relative) in compute shaders
  kInt8 = 1u << 5,             // shaderInt8: 8-bit integer arithmetic
  kInt16 = 1u << 6,            // shaderInt16
  kInt64 = 1u << 7,            // shaderInt64
};

struct KernelInfo {
  std::string_view name;                 // variant name, e.g. "scale_f32"
  std::span<const std::uint32_t> spirv;  // the validated SPIR-V words
  std::uint32_t binding_count;           // storage buffers at set 0, bindings 0..n-1
  std::uint32_t push_constant_bytes;     // size of the push-constant block (0 = none)
  std::uint32_t features;                // bit set of Feature
  std::string_view defines;  // kernels.cmake DEFINES, space-separated ("WTYPE=3 MATVEC")
};

// Every embedded variant, sorted by name.
std::span<const KernelInfo> all_kernels();

// The variant called `name`; throws std::out_of_range naming it when there is none.
const KernelInfo& kernel(std::string_view name);

// The kernels.cmake name of one feature bit ("fp16", "storage16", ...).
std::string_view feature_name(Feature f);

}  // namespace kwaai::kernels
