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

// The packed-weight kernels' reference: the same integer sums and the same float operations
// per block and row (KernelTable's GemmFn terms, fused as the vector tables fuse them), so every
// table gives bit-identical results. Q8_0 codes are taken signed (act offset 0).
// Code of value v (0..31) of row r in a 32-value block (engine/cpu/qpack.hpp's chunk layout).
template <PackCode C>
int code_of(const std::uint8_t* wc, int r, int v) {
  const int t = v % 4;
  if constexpr (C == PackCode::Q8_0) return static_cast<std::int8_t>(wc[(v / 4) * 64 + r * 4 + t]);
  const int c = (v % 16) / 4;
  const std::uint8_t nib = wc[c * 64 + r * 4 + t];
  int q = v < 16 ? (nib & 15) : (nib >> 4);
  if constexpr (C == PackCode::Q5_K) {
    const std::uint8_t p = wc[4 * 64 + r * 4 + t];
    q |= ((p >> (v < 16 ? c : 4 + c)) & 1) << 4;
  } else if constexpr (C == PackCode::Q6_K) {
    const std::uint8_t p = wc[(v < 16 ? 4 : 5) * 64 + r * 4 + t];
    q |= ((p >> (2 * c)) & 3) << 4;
  }
  return q;
}

template <PackCode C>
void gemm(const std::uint8_t* codes, const std::uint16_t* scales, std::int64_t nb, const ActTile& a,
          float* y, std::int64_t ldy, int n_valid, bool accumulate) {
  constexpr std::size_t cb = pack_code_bytes(C);
  float acc[kMaxGemmRows][16] = {};
  if (accumulate)
    for (int m = 0; m < a.mr; ++m)
      for (int r = 0; r < n_valid; ++r) acc[m][r] = y[m * ldy + r];
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::uint8_t* wc = codes + b * 16 * cb;
    const auto* rec = reinterpret_cast<const std::uint8_t*>(scales) + (b / 8) * pack_meta_bytes(C);
    const int j = static_cast<int>(b % 8);
    for (int m = 0; m < a.mr; ++m) {
      const std::int8_t* qa = a.qs + (b * a.mr + m) * kQuantBlock;
      const float da = a.d[b * a.mr + m];
      const std::int32_t bias = a.bias[b * a.mr + m];
      for (int r = 0; r < 16; ++r) {
        std::int32_t lo = 0, hi = 0;
        for (int v = 0; v < 16; ++v) lo += code_of<C>(wc, r, v) * qa[v];
        for (int v = 16; v < 32; ++v) hi += code_of<C>(wc, r, v) * qa[v];
        float& o = acc[m][r];
        if constexpr (!pack_kquant(C)) {
          const float dw = f16_to_f32(scales[b * 16 + r]);
          o = std::fma(static_cast<float>(bias + lo + hi) * da, dw, o);
        } else {
          std::uint16_t dh;
          __builtin_memcpy(&dh, rec + 2 * r, 2);
          const float d = f16_to_f32(dh);
          if constexpr (C == PackCode::Q6_K) {
            const std::int32_t hs = a.hsum[b * a.mr + m];
            const auto sc = [&](int k) {
              return static_cast<float>(static_cast<std::int8_t>(rec[32 + 16 * k + r]));
            };
            o = std::fma(static_cast<float>(lo - 32 * hs) * da, d * sc(2 * j), o);
            o = std::fma(static_cast<float>(hi + 32 * (bias + hs)) * da, d * sc(2 * j + 1), o);
          } else {
            std::uint16_t mh;
            __builtin_memcpy(&mh, rec + 32 + 2 * r, 2);
            const float dw = d * static_cast<float>(rec[64 + 16 * j + r]);
            const float mw = f16_to_f32(mh) * static_cast<float>(rec[192 + 16 * j + r]);
            o = std::fma(static_cast<float>(lo + hi) * da, dw, o);
            o = std::fma(a.dbias[b * a.mr + m], mw, o);  // float(bias) * da
          }
        }
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
                             .gemm_q8_0 = gemm_each_group<gemm<PackCode::Q8_0>>,
                             .gemm_q4_0 = gemm_each_group<gemm<PackCode::Q4_0>>,
                             .gemm_q4_k = gemm_each_group<gemm<PackCode::Q4_K>>,
                             .gemm_q5_k = gemm_each_group<gemm<PackCode::Q5_K>>,
                             .gemm_q6_k = gemm_each_group<gemm<PackCode::Q6_K>>,
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
