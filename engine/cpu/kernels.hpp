// Inner loops of the CPU backend, one table per instruction set, picked once at run time
// (__builtin_cpu_supports) so one binary runs on any x86-64 and uses AVX-512 VNNI where
// the CPU has it. Every table computes the same function; only speed differs (float
// summation order aside), and the op tests run the scalar table against the fast ones.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/core/dtype.hpp"

namespace kwaai::engine::cpu {

// An activation row quantized for the integer kernels: value = qs[i] * d, sum = sum(qs).
struct BlockQ8Act {
  float d;
  std::int32_t sum;
  std::int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8Act) == 40);

// Quantizes nblocks*32 floats: d = absmax / 127, q = round-to-nearest-even(x * (1 / d)).
// The reference; a table's `quantize_act` must give the same bytes (the vector forms do the
// same IEEE operations, and the float -> int conversion rounds to nearest even as nearbyint
// does), so every table sees identical activation codes.
void quantize_act_q8(const float* x, BlockQ8Act* y, std::int64_t nblocks);

// One tile of quantized activation rows in the layout of engine/cpu/qpack.hpp.
struct ActTile {
  const std::int8_t* qs = nullptr;     // [nb][mr][32]
  const float* d = nullptr;            // [nb][mr]
  const std::int32_t* bias = nullptr;  // [nb][mr]: -offset * sum(codes)
  const std::int32_t* hsum = nullptr;  // [nb][mr]: sum of codes 0..15 of the block
  const float* dbias = nullptr;        // [nb][mr]: float(bias) * d (the K-quant minimum term)
  int mr = 0;
  // The weights pass by once (decode, at most kDecodeMaxRows activation rows): kernels ask for
  // them ahead. Prefill tiles reuse them from cache and would only pay the issue slots.
  bool stream = false;
};

// One tile of f32 activation rows for the 16-bit float kernels: [k][mr], value k of row m at
// xt[k * mr + m] (engine/cpu/qpack.hpp FloatActPack).
struct FloatTile {
  const float* xt = nullptr;
  int mr = 0;
};

// A packed 16-bit float kernel (f16 or bf16, engine/cpu/qpack.hpp): `nk` consecutive values of
// one 16-row group (`w` at the first) against the same values of one tile. For m < a.mr and
// r < n_valid: y[m * ldy + r] = y0 + sum_k w[r, k] * x[m, k] with y0 = accumulate ? y : 0, in
// half_chains(mr) interleaved chains of one fused multiply-add per value (value k, counted from
// the call's first, into chain k % chains; chain 0 starts at y0, the others at 0), added at the
// end as c0 + c1 or (c0 + c1) + (c2 + c3). Tiles of 3+ rows have one chain, so pieces of K
// continue it bit for bit; 1- and 2-row tiles (decode) split it so that consecutive FMAs are
// independent (one chain of 4-cycle FMAs held f16 decode below the memory bandwidth).
constexpr int half_chains(int mr) {
  return mr == 1 ? 4 : mr == 2 ? 2 : 1;
}
using GemmHalfFn = void (*)(const std::uint16_t* w, std::int64_t nk, const FloatTile& a, float* y,
                            std::int64_t ldy, int n_valid, bool accumulate);

// A packed-weight kernel: nb consecutive blocks of `groups` consecutive 16-row groups
// (engine/cpu/qpack.hpp; groups <= the table's gemm_groups) against the same blocks of one
// activation tile. Group j's codes are at codes + j * group_bytes (`codes` at group 0's first
// block), its scales at the same offset from `scales` (group 0's first block's 16 scales), and
// its rows are y's columns 16 j .. 16 j + 15. For m < a.mr and r < n_valid (counted over all the
// groups, so at most 16 * groups):
//   y[m * ldy + r] = y0 + sum_b dw[r,b] * da[m,b] * (sum_i code[r,b,i] * qa[m,b,i] + bias[m,b])
// with code the weight code plus the table's offset for the format (so bias cancels it), the
// float accumulation a chain of one fused multiply-add per block in block order starting at
// y0 = accumulate ? y : 0. Continuing a chain over consecutive block ranges therefore gives the
// same bits as one call over all of them (the caller splits K into cache-sized pieces), and
// `accumulate` on the first piece adds a residual. How many groups a call takes changes no bit.
// The K-quants (unsigned codes, act offset 1 so bias = -sum(qa); `scales` at the scale record of
// the call's first block, nb and that block multiples of 8) follow the formats' own terms, per
// block in this order, with s_lo / s_hi the code products over values 0..15 / 16..31:
//   Q4_K, Q5_K: acc = fma((s_lo + s_hi) * da, d * sc_j, acc); acc = fma(bias * da, dmin * m_j, acc)
//   Q6_K:       acc = fma((s_lo - 32 * hsum) * da, d * sc_2j, acc);
//               acc = fma((s_hi + 32 * (bias + hsum)) * da, d * sc_2j+1, acc)
// (j the block's index in its super-block; every product of a scale with a 6- or 8-bit integer
// is exact in f32).
using GemmFn = void (*)(const std::uint8_t* codes, const std::uint16_t* scales,
                        std::size_t group_bytes, int groups, std::int64_t nb, const ActTile& a,
                        float* y, std::int64_t ldy, int n_valid, bool accumulate);

// A table whose kernel does one group per call (gemm_groups 1) exposes it through this.
using GemmOneFn = void (*)(const std::uint8_t* codes, const std::uint16_t* scales, std::int64_t nb,
                           const ActTile& a, float* y, std::int64_t ldy, int n_valid,
                           bool accumulate);
template <GemmOneFn One>
void gemm_each_group(const std::uint8_t* codes, const std::uint16_t* scales,
                     std::size_t group_bytes, int groups, std::int64_t nb, const ActTile& a,
                     float* y, std::int64_t ldy, int n_valid, bool accumulate) {
  for (int j = 0; j < groups && n_valid > 16 * j; ++j)
    One(codes + j * group_bytes, scales + j * group_bytes / 2, nb, a, y + 16 * j, ldy,
        n_valid - 16 * j < 16 ? n_valid - 16 * j : 16, accumulate);
}

// The code layouts of the packed int8 kernels, one per block-quantized format.
enum class PackCode { Q8_0, Q4_0, Q4_K, Q5_K, Q6_K };
// Code bytes per row and 32-value block, and scale-record bytes per 16-row group.
constexpr std::size_t pack_code_bytes(PackCode c) {
  return c == PackCode::Q8_0 ? 32 : c == PackCode::Q5_K ? 20 : c == PackCode::Q6_K ? 24 : 16;
}
constexpr std::size_t pack_meta_bytes(PackCode c) {
  return c == PackCode::Q6_K ? 288 : c == PackCode::Q4_K || c == PackCode::Q5_K ? 320 : 32;
}
constexpr bool pack_kquant(PackCode c) {
  return c == PackCode::Q4_K || c == PackCode::Q5_K || c == PackCode::Q6_K;
}
// The layout of a block-quantized cpu_packed format (Q8_0 for anything else).
constexpr PackCode pack_code_of(DType t) {
  return t == DType::Q4_0   ? PackCode::Q4_0
         : t == DType::Q4_K ? PackCode::Q4_K
         : t == DType::Q5_K ? PackCode::Q5_K
         : t == DType::Q6_K ? PackCode::Q6_K
                            : PackCode::Q8_0;
}

struct KernelTable {
  const char* name;
  float (*dot_f32)(const float* a, const float* b, std::int64_t n);
  void (*quantize_act)(const float* x, BlockQ8Act* y, std::int64_t nblocks);
  // Packed Q8_0 / Q4_0 weights; activation tiles of up to gemm_rows rows. The act offsets are
  // what each kernel adds to the weight codes (0 when it multiplies signed codes directly).
  GemmFn gemm_q8_0;
  GemmFn gemm_q4_0;
  GemmFn gemm_q4_k;
  GemmFn gemm_q5_k;
  GemmFn gemm_q6_k;
  GemmHalfFn gemm_f16;
  GemmHalfFn gemm_bf16;
  int gemm_rows;
  // 16-row groups a gemm call takes at most: a kernel that holds two groups' accumulators reuses
  // each broadcast activation word for both (AVX-512: 6 rows x 2 groups beat 12 rows x 1 by 5-7
  // points of the int8 peak, the memory operand being what held 12 x 1 back).
  int gemm_groups;
  // Tile rows of the 16-bit float kernels (FloatActPack).
  int gemm_half_rows;
  std::int32_t q8_0_act_offset;
  std::int32_t q4_0_act_offset;
  // The int8 multiply-add rate the gemm kernels are built on, for roofline figures: `iters`
  // rounds of independent dot instructions on registers (no memory); returns the multiply-adds
  // done (and a value that depends on them, so the loop cannot be dropped).
  std::int64_t (*int8_peak_loop)(std::int64_t iters, std::int32_t* sink);
  // Attention and FFN element work: y += a * x; x[i] = exp(x[i] - shift) returning their sum;
  // out = silu(g) * u = g / (1 + exp(-g)) * u.
  void (*axpy_f32)(float a, const float* x, float* y, std::int64_t n);
  float (*exp_sum_f32)(float* x, float shift, std::int64_t n);
  void (*silu_mul_f32)(const float* g, const float* u, float* out, std::int64_t n);
  // Blocked attention (engine/cpu/attention.cpp):
  //   s[r * lds + j] = q_r · k_j   for r < rows, j < keys   (q_r = q + r * D)
  //   o[r * D + :] += sum_j p[r * ldp + j] * v_j            (v_j = v + j * ldv)
  // with the keys given transposed in chunks of 16 (kt: chunk c at kt + c * D * 16, key
  // 16 c + i's value d at [d * 16 + i], zero past the last key), so scores need no horizontal
  // sums.
  void (*attn_scores)(const float* q, int rows, const float* kt, int keys, std::int64_t D, float* s,
                      std::int64_t lds);
  void (*attn_accumulate)(const float* p, std::int64_t ldp, int rows, const float* v,
                          std::int64_t ldv, int keys, std::int64_t D, float* o);
};

// The largest gemm_rows / gemm_half_rows of any table (activation tiles are sized by the table in
// use).
inline constexpr int kMaxGemmRows = 16;
// The largest gemm_groups of any table.
inline constexpr int kMaxGemmGroups = 2;

// F16C from CPUID directly: clang's __builtin_cpu_supports does not know "f16c".
bool cpu_has_f16c();
// AVX-VNNI likewise (clang 14 rejects __builtin_cpu_supports("avxvnni")).
bool cpu_has_avx_vnni();

const KernelTable& scalar_kernels();
const KernelTable* avx2_kernels();      // nullptr unless the CPU has AVX2 + FMA + F16C
const KernelTable* avx_vnni_kernels();  // nullptr unless also AVX-VNNI (256-bit vpdpbusd)
const KernelTable* avx512_kernels();    // nullptr unless AVX-512 F/BW/VL/DQ + VNNI + F16C
// The fastest table this CPU supports; KWAAI_CPU_ISA is not read here (no getenv in
// library code): callers that want a specific table pick it explicitly.
const KernelTable& best_kernels();
// The table called `name` ("scalar", "avx2", "avx_vnni", "avx512"), or nullptr when this CPU
// cannot run it or there is no such table.
const KernelTable* kernels_by_name(const char* name);

}  // namespace kwaai::engine::cpu
