// Portable reference inner loops (also the fallback on CPUs without AVX2).
#include <cpuid.h>

#include <cmath>
#include <string_view>

#include "engine/cpu/kernels.hpp"

namespace kwaai::engine::cpu {

void quantize_act_q8(const float* x, BlockQ8Act* y, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      const int q = static_cast<int>(std::nearbyint(xb[j] * id));
      y[b].qs[j] = static_cast<std::int8_t>(q);
      sum += q;
    }
    y[b].d = d;
    y[b].sum = sum;
  }
}

namespace {

float dot_f32(const float* a, const float* b, std::int64_t n) {
  float s = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The packed-weight kernels' reference: the same integer sums and the same two float
// operations per block and row ((sum * da) * dw + acc, fused as the vector tables fuse it),
// so every table gives bit-identical results. Q8_0 codes are taken signed (act offset 0).
template <bool Q4>
void gemm(const std::uint8_t* codes, const std::uint16_t* scales, std::int64_t nb, const ActTile& a,
          float* y, std::int64_t ldy, int n_valid, bool accumulate) {
  const std::size_t cb = Q4 ? 16 : 32;
  float acc[kMaxGemmRows][16] = {};
  if (accumulate)
    for (int m = 0; m < a.mr; ++m)
      for (int r = 0; r < n_valid; ++r) acc[m][r] = y[m * ldy + r];
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::uint8_t* wc = codes + b * 16 * cb;
    for (int m = 0; m < a.mr; ++m) {
      const std::int8_t* qa = a.qs + (b * a.mr + m) * kQuantBlock;
      const float da = a.d[b * a.mr + m];
      for (int r = 0; r < 16; ++r) {
        std::int32_t sum = a.bias[b * a.mr + m];
        for (std::size_t c = 0; c < cb / 4; ++c) {
          for (int t = 0; t < 4; ++t) {
            const std::uint8_t byte = wc[c * 64 + static_cast<std::size_t>(r) * 4 + t];
            const std::size_t k = 4 * c + static_cast<std::size_t>(t);
            if (Q4) {
              sum += (byte & 15) * qa[k] + (byte >> 4) * qa[16 + k];
            } else {
              sum += static_cast<std::int8_t>(byte) * qa[k];
            }
          }
        }
        const float dw = f16_to_f32(scales[b * 16 + r]);
        acc[m][r] = std::fma(static_cast<float>(sum) * da, dw, acc[m][r]);
      }
    }
  }
  for (int m = 0; m < a.mr; ++m)
    for (int r = 0; r < n_valid; ++r) y[m * ldy + r] = acc[m][r];
}

// The 16-bit float kernels' reference: one fused multiply-add per value in k order, as the
// vector tables do per lane.
template <bool BF16>
void gemm_half(const std::uint16_t* w, std::int64_t nk, const FloatTile& a, float* y,
               std::int64_t ldy, int n_valid, bool accumulate) {
  const int chains = half_chains(a.mr);
  float acc[kMaxGemmRows][4][16] = {};
  if (accumulate)
    for (int m = 0; m < a.mr; ++m)
      for (int r = 0; r < n_valid; ++r) acc[m][0][r] = y[m * ldy + r];
  for (std::int64_t k = 0; k < nk; ++k)
    for (int r = 0; r < 16; ++r) {
      const float wv = BF16 ? bf16_to_f32(w[k * 16 + r]) : f16_to_f32(w[k * 16 + r]);
      for (int m = 0; m < a.mr; ++m) {
        float& c = acc[m][k % chains][r];
        c = std::fma(a.xt[k * a.mr + m], wv, c);
      }
    }
  for (int m = 0; m < a.mr; ++m)
    for (int r = 0; r < n_valid; ++r) {
      const auto& c = acc[m];
      y[m * ldy + r] = chains == 4   ? (c[0][r] + c[1][r]) + (c[2][r] + c[3][r])
                       : chains == 2 ? c[0][r] + c[1][r]
                                     : c[0][r];
    }
}

std::int64_t int8_peak_loop(std::int64_t iters, std::int32_t* sink) {
  std::int32_t acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (std::int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 8; ++j) acc[j] += static_cast<std::int8_t>(acc[(j + 1) & 7]) * 3;
  *sink = acc[0] + acc[7];
  return iters * 8;
}

void axpy_f32(float a, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float exp_sum_f32(float* x, float shift, std::int64_t n) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    s += x[i];
  }
  return static_cast<float>(s);
}

void attn_scores(const float* q, int rows, const float* kt, int keys, std::int64_t D, float* s,
                 std::int64_t lds) {
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < keys; ++j) {
      const float* c = kt + (j / 16) * D * 16 + j % 16;
      float acc = 0.0f;
      for (std::int64_t d = 0; d < D; ++d) acc += q[r * D + d] * c[d * 16];
      s[r * lds + j] = acc;
    }
}

void attn_accumulate(const float* p, std::int64_t ldp, int rows, const float* v, std::int64_t ldv,
                     int keys, std::int64_t D, float* o) {
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < keys; ++j) axpy_f32(p[r * ldp + j], v + j * ldv, o + r * D, D);
}

void silu_mul_f32(const float* g, const float* u, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable t{.name = "scalar",
                             .dot_f32 = dot_f32,
                             .quantize_act = quantize_act_q8,
                             .gemm_q8_0 = gemm_each_group<gemm<false>>,
                             .gemm_q4_0 = gemm_each_group<gemm<true>>,
                             .gemm_f16 = gemm_half<false>,
                             .gemm_bf16 = gemm_half<true>,
                             .gemm_rows = 8,
                             .gemm_groups = 1,
                             .gemm_half_rows = 8,
                             .q8_0_act_offset = 0,
                             .q4_0_act_offset = 8,
                             .int8_peak_loop = int8_peak_loop,
                             .axpy_f32 = axpy_f32,
                             .exp_sum_f32 = exp_sum_f32,
                             .silu_mul_f32 = silu_mul_f32,
                             .attn_scores = attn_scores,
                             .attn_accumulate = attn_accumulate};
  return t;
}

const KernelTable& best_kernels() {
  static const KernelTable& t = []() -> const KernelTable& {
    if (const auto* k = avx512_kernels()) return *k;
    if (const auto* k = avx_vnni_kernels()) return *k;
    if (const auto* k = avx2_kernels()) return *k;
    return scalar_kernels();
  }();
  return t;
}

const KernelTable* kernels_by_name(const char* name) {
  const std::string_view n(name);
  if (n == "scalar") return &scalar_kernels();
  if (n == "avx2") return avx2_kernels();
  if (n == "avx-vnni") return avx_vnni_kernels();
  if (n == "avx512-vnni") return avx512_kernels();
  return nullptr;
}

bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

bool cpu_has_avx_vnni() {
  // CPUID.(EAX=7,ECX=1):EAX bit 4. Read directly: clang 14's __builtin_cpu_supports rejects
  // "avxvnni" at compile time, and the fuzz/sanitizer build uses clang.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  return (eax & (1u << 4)) != 0;
}

}  // namespace kwaai::engine::cpu
