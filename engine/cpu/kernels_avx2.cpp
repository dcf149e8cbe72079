// AVX2 + FMA + F16C inner loops. Per-function target attributes (not file-wide flags) keep
// every other function in this TU baseline x86-64, so no AVX2 code can leak into shared
// inline functions and the binary still starts on older CPUs.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/cpu/kernels.hpp"

#define KWAAI_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace kwaai::engine::cpu {

namespace {

KWAAI_AVX2 inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

KWAAI_AVX2 float dot_f32(const float* a, const float* b, std::int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

#define KWAAI_GEMM256_TARGET KWAAI_AVX2
#define KWAAI_GEMM256_VNNI 0
#include "engine/cpu/gemm_x86_256.inl"
#undef KWAAI_GEMM256_VNNI
#undef KWAAI_GEMM256_TARGET

KWAAI_AVX2 void axpy_f32(float a, const float* x, float* y, std::int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// exp(x) as in the AVX-512 table (ln 2 range reduction, degree-7 polynomial), with 2^n built
// in the exponent field since AVX2 has no vscalefps: n is kept in [-126, 127] by clamping x to
// [-87.3, 88.3], and inputs beyond the ends get exp's own limits (0, inf) by blends. A NaN
// passes through the clamps (max/min return their second operand for NaN) and the polynomial.
KWAAI_AVX2 inline __m256 exp256(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  const __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860676533018704e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), under);
  return _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
}

KWAAI_AVX2 float exp_sum_f32(float* x, float shift, std::int64_t n) {
  const __m256 vs = _mm256_set1_ps(shift);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    const __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
    _mm256_storeu_ps(x + i, e0);
    _mm256_storeu_ps(x + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    _mm256_storeu_ps(x + i, e);
    acc0 = _mm256_add_ps(acc0, e);
  }
  float s = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    s += x[i];
  }
  return s;
}

KWAAI_AVX2 void silu_mul_f32(const float* g, const float* u, float* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gv = _mm256_loadu_ps(g + i);
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), gv));
    _mm256_storeu_ps(out + i,
                     _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(_mm256_set1_ps(1.0f), e)),
                                   _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// As the AVX-512 forms, 8 keys / 8 columns per register.
template <int R>
KWAAI_AVX2 void scores_rows(const float* q, std::int64_t D, const float* kt, int n, float* s,
                            std::int64_t lds) {
  __m256 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (std::int64_t d = 0; d < D; ++d) {
    const __m256 kv = _mm256_loadu_ps(kt + d * 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(q[r * D + d]), kv, acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, acc[r]);
    for (int j = 0; j < n; ++j) s[r * lds + j] = tmp[j];
  }
}

// Keys 8 at a time: each half of a 16-key chunk.
KWAAI_AVX2 void attn_scores(const float* q, int rows, const float* kts, int keys, std::int64_t D,
                            float* s, std::int64_t lds) {
  for (int j0 = 0; j0 < keys; j0 += 8) {
    const int n = std::min(8, keys - j0);
    const float* kt = kts + (j0 / 16) * D * 16 + j0 % 16;
    int r = 0;
    for (; r + 4 <= rows; r += 4) scores_rows<4>(q + r * D, D, kt, n, s + r * lds + j0, lds);
    for (; r < rows; ++r) scores_rows<1>(q + r * D, D, kt, n, s + r * lds + j0, lds);
  }
}

KWAAI_AVX2 void attn_accumulate(const float* p, std::int64_t ldp, int rows, const float* v,
                                std::int64_t ldv, int keys, std::int64_t D, float* o) {
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < keys; ++j) axpy_f32(p[r * ldp + j], v + j * ldv, o + r * D, D);
}

}  // namespace

const KernelTable* avx2_kernels() {
  static const bool ok =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  static const KernelTable t{.name = "avx2",
                             .dot_f32 = dot_f32,
                             .quantize_act = quantize_act_q8,
                             .gemm_q8_0 = gemm_each_group<gemm256<PackCode::Q8_0>>,
                             .gemm_q4_0 = gemm_each_group<gemm256<PackCode::Q4_0>>,
                             .gemm_q4_k = gemm_each_group<gemm256<PackCode::Q4_K>>,
                             .gemm_q5_k = gemm_each_group<gemm256<PackCode::Q5_K>>,
                             .gemm_q6_k = gemm_each_group<gemm256<PackCode::Q6_K>>,
                             .gemm_f16 = gemm_half256<false>,
                             .gemm_bf16 = gemm_half256<true>,
                             .gemm_rows = kGemm256Rows,
                             .gemm_groups = 1,
                             .gemm_half_rows = kGemm256Rows,
                             .q8_0_act_offset = 0,
                             .q4_0_act_offset = 8,
                             .int8_peak_loop = int8_peak_loop256,
                             .axpy_f32 = axpy_f32,
                             .exp_sum_f32 = exp_sum_f32,
                             .silu_mul_f32 = silu_mul_f32,
                             .attn_scores = attn_scores,
                             .attn_accumulate = attn_accumulate};
  return ok ? &t : nullptr;
}

}  // namespace kwaai::engine::cpu
