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

// Quantizes nblocks*32 floats: d = absmax / 127, q = round-to-nearest-even(x * (1 / d)).
// The reference; a table's `quantize_act` must give the same bytes (the vector forms do the
// same IEEE operations, and the float -> int conversion rounds to nearest even as nearbyint
// does), so every table sees identical activation codes.
void quantize_act_q8(const float* x, BlockQ8Act* y, std::int64_t nblocks);

// The same activation codes regrouped for kernels that take four Q4_0 blocks (128 values) per
// step: a Q4_0 byte holds value j in its low nibble and value j + 16 in its high one, so `lo`
// holds values 0..15 of each of the four blocks and `hi` values 16..31, in the order the
// weight nibbles come out of one register. `ds` is the 4 blocks' d then their s, where s here
// is 2 * BlockQ8Act::s: a kernel that spreads a block's dot product over 4 int32 lanes
// subtracts 2 s in each, 8 s in all, the block's -8 code offset (x2 is exact in float).
// 160 bytes per 128 values: a 14336-wide row's groups (18 KiB) stay in L1 with room to spare.
struct alignas(32) ActGroup4 {
  std::int8_t lo[64];
  std::int8_t hi[64];
  float ds[8];
};
static_assert(sizeof(ActGroup4) == 160);

// Writes nblocks / 4 groups (a trailing partial group is left to the per-block path).
void group_act_q4(const BlockQ8Act* x, ActGroup4* g, std::int64_t nblocks);

inline constexpr int kMaxDotRows = 8;

struct KernelTable {
  const char* name;
  float (*dot_f32)(const float* a, const float* b, std::int64_t n);
  float (*dot_f16)(const std::uint16_t* w, const float* x, std::int64_t n);
  float (*dot_bf16)(const std::uint16_t* w, const float* x, std::int64_t n);
  void (*quantize_act)(const float* x, BlockQ8Act* y, std::int64_t nblocks);
  float (*dot_q8_0)(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nblocks);
  // `g` is group_act_q4 of `x` (tables that do not use it ignore it).
  float (*dot_q4_0)(const BlockQ4_0* w, const BlockQ8Act* x, const ActGroup4* g,
                    std::int64_t nblocks);
  // One weight row against `rows` (1..8) activation rows, x = rows × nblocks blocks and
  // g = rows × nblocks/4 groups; out[r] is row r's dot product. The AVX-512 table decodes each
  // weight block once for all rows (batched decode); the others loop over the dots above.
  void (*dot_q8_0_rows)(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nblocks, int rows,
                        float* out);
  void (*dot_q4_0_rows)(const BlockQ4_0* w, const BlockQ8Act* x, const ActGroup4* g,
                        std::int64_t nblocks, int rows, float* out);
  // n-element f16 / bf16 -> f32 (used to dequantize weight tiles for sgemm).
  void (*f16_to_f32_row)(const std::uint16_t* src, float* dst, std::int64_t n);
  void (*bf16_to_f32_row)(const std::uint16_t* src, float* dst, std::int64_t n);
  // Attention and FFN element work: y += a * x; x[i] = exp(x[i] - shift) returning their sum;
  // out = silu(g) * u = g / (1 + exp(-g)) * u.
  void (*axpy_f32)(float a, const float* x, float* y, std::int64_t n);
  float (*exp_sum_f32)(float* x, float shift, std::int64_t n);
  void (*silu_mul_f32)(const float* g, const float* u, float* out, std::int64_t n);
};

// dot_*_rows built from a table's single-row dot, for tables without a multi-row kernel.
template <float (*Dot)(const BlockQ8_0*, const BlockQ8Act*, std::int64_t)>
void dot_q8_0_each_row(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nb, int rows,
                       float* out) {
  for (int r = 0; r < rows; ++r) out[r] = Dot(w, x + r * nb, nb);
}
template <float (*Dot)(const BlockQ4_0*, const BlockQ8Act*, const ActGroup4*, std::int64_t)>
void dot_q4_0_each_row(const BlockQ4_0* w, const BlockQ8Act* x, const ActGroup4* g, std::int64_t nb,
                       int rows, float* out) {
  for (int r = 0; r < rows; ++r) out[r] = Dot(w, x + r * nb, g + r * (nb / 4), nb);
}

// F16C from CPUID directly: clang's __builtin_cpu_supports does not know "f16c".
bool cpu_has_f16c();

const KernelTable& scalar_kernels();
const KernelTable* avx2_kernels();    // nullptr unless the CPU has AVX2 + FMA + F16C
const KernelTable* avx512_kernels();  // nullptr unless AVX-512 F/BW/VL + VNNI + F16C
// The fastest table this CPU supports; KWAAI_CPU_ISA is not read here (no getenv in
// library code): callers that want a specific table pick it explicitly.
const KernelTable& best_kernels();

}  // namespace kwaai::engine::cpu
