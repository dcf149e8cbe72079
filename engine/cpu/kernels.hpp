// Inner loops of the CPU backend, one table per instruction set, picked once at run time
// (__builtin_cpu_supports) so one binary runs on any x86-64 and uses AVX-512 VNNI where
// the CPU has it. Every table computes the same function; only speed differs (float
// summation order aside), and the op tests run the scalar table against the fast ones.
#pragma once

#include <cstdint>

#include "engine/core/dtype.hpp"

namespace kwaai::engine::cpu {

// An activation row quantized for the integer dot products of the decode path:
// value = qs[i] * d; s = d * sum(qs) lets the Q4_0 kernel fold its -8 offset in once per
// block instead of per value.
struct BlockQ8Act {
  float d;
  float s;
  std::int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8Act) == 40);

// Quantizes nblocks*32 floats: d = absmax / 127, q = round-to-nearest-even(x / d).
// Kept scalar and ISA-independent so every table sees identical activation codes.
void quantize_act_q8(const float* x, BlockQ8Act* y, std::int64_t nblocks);

struct KernelTable {
  const char* name;
  float (*dot_f32)(const float* a, const float* b, std::int64_t n);
  float (*dot_f16)(const std::uint16_t* w, const float* x, std::int64_t n);
  float (*dot_bf16)(const std::uint16_t* w, const float* x, std::int64_t n);
  float (*dot_q8_0)(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nblocks);
  float (*dot_q4_0)(const BlockQ4_0* w, const BlockQ8Act* x, std::int64_t nblocks);
  // n-element f16 / bf16 -> f32 (used to dequantize weight tiles for sgemm).
  void (*f16_to_f32_row)(const std::uint16_t* src, float* dst, std::int64_t n);
  void (*bf16_to_f32_row)(const std::uint16_t* src, float* dst, std::int64_t n);
};

// F16C from CPUID directly: clang's __builtin_cpu_supports does not know "f16c".
bool cpu_has_f16c();

const KernelTable& scalar_kernels();
const KernelTable* avx2_kernels();    // nullptr unless the CPU has AVX2 + FMA + F16C
const KernelTable* avx512_kernels();  // nullptr unless AVX-512 F/BW/VL + VNNI + F16C
// The fastest table this CPU supports; KWAAI_CPU_ISA is not read here (no getenv in
// library code): callers that want a specific table pick it explicitly.
const KernelTable& best_kernels();

}  // namespace kwaai::engine::cpu
