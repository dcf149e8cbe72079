// AVX-512 (F/BW/VL/DQ) + VNNI inner loops; two 32-value blocks per 512-bit register.
// Per-function target attributes, as in kernels_avx2.cpp, so nothing else in the binary
// needs AVX-512.
// GCC 12's own AVX-512 headers trip -W(maybe-)uninitialized (their _mm512_undefined_*
// helpers); the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "engine/cpu/kernels.hpp"

#define KWAAI_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

namespace kwaai::engine::cpu {

namespace {

KWAAI_AVX512 float dot_f32(const float* a, const float* b, std::int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  if (i < n) {  // masked tail: up to two partial vectors
    for (; i < n; i += 16) {
      const std::int64_t left = n - i;
      const __mmask16 m = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
      acc0 =
          _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

KWAAI_AVX512 inline __m512 load_bf16x16(const std::uint16_t* p) {
  const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

KWAAI_AVX512 inline __m512 load_f16x16(const std::uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

KWAAI_AVX512 float dot_f16(const std::uint16_t* w, const float* x, std::int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(load_f16x16(w + i), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(load_f16x16(w + i + 16), _mm512_loadu_ps(x + i + 16), acc1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; i < n; ++i) s += _cvtsh_ss(w[i]) * x[i];
  return s;
}

KWAAI_AVX512 float dot_bf16(const std::uint16_t* w, const float* x, std::int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  std::int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(load_bf16x16(w + i), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(load_bf16x16(w + i + 16), _mm512_loadu_ps(x + i + 16), acc1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

KWAAI_AVX512 inline __m512i load2x32(const std::int8_t* a, const std::int8_t* b) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// Per-lane scale: s0 in lanes 0..7 (block b), s1 in lanes 8..15 (block b + 1).
KWAAI_AVX512 inline __m512 scale2(float s0, float s1) {
  return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}

// vpdpbusd multiplies unsigned by signed bytes: the weight's sign moves onto the activation
// (|w| * (x * sign(w)) == w * x; activation codes are within [-127, 127], so negation is
// exact). Each int32 lane sums 4 products of one block, so lanes 0..7 hold block b.
KWAAI_AVX512 float dot_q8_0(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nb) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  std::int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m512i w0 = load2x32(w[b].qs, w[b + 1].qs);
    const __m512i x0 = load2x32(x[b].qs, x[b + 1].qs);
    const __m512i w1 = load2x32(w[b + 2].qs, w[b + 3].qs);
    const __m512i x1 = load2x32(x[b + 2].qs, x[b + 3].qs);
    const __m512i sx0 = _mm512_mask_sub_epi8(x0, _mm512_movepi8_mask(w0), zero, x0);
    const __m512i sx1 = _mm512_mask_sub_epi8(x1, _mm512_movepi8_mask(w1), zero, x1);
    const __m512i p0 = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(w0), sx0);
    const __m512i p1 = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(w1), sx1);
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0),
                           scale2(_cvtsh_ss(w[b].d) * x[b].d, _cvtsh_ss(w[b + 1].d) * x[b + 1].d),
                           acc0);
    acc1 = _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(p1),
        scale2(_cvtsh_ss(w[b + 2].d) * x[b + 2].d, _cvtsh_ss(w[b + 3].d) * x[b + 3].d), acc1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(wv, wv),
                                          _mm256_sign_epi8(xv, wv));
    const __m256 pf = _mm256_cvtepi32_ps(p);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(pf), _mm256_extractf128_ps(pf, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s += _mm_cvtss_f32(h) * _cvtsh_ss(w[b].d) * x[b].d;
  }
  return s;
}

// Two Q4_0 blocks -> 64 unsigned codes laid out like two activation blocks:
// 128-bit lanes [lo(b), hi(b), lo(b+1), hi(b+1)].
KWAAI_AVX512 inline __m512i unpack_q4x2(const std::uint8_t* q0, const std::uint8_t* q1) {
  const __m256i v = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q0))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(q1)), 1);
  const __m256i mask = _mm256_set1_epi8(15);
  const __m256i lo = _mm256_and_si256(v, mask);                        // [lo0 | lo1]
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);  // [hi0 | hi1]
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(3, 1, 2, 0));
}

// Q4_0: codes are unsigned already, so vpdpbusd(q, x) applies directly; the -8 offset is
// folded in per block through the activation's s = d * sum(x).
KWAAI_AVX512 float dot_q4_0(const BlockQ4_0* w, const BlockQ8Act* x, std::int64_t nb) {
  // Four blocks per iteration into two independent accumulator chains (vector and the scalar
  // -8 correction): with one chain the loop is bound by FMA latency, not by memory.
  __m512 acc = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  float corr = 0.0f, corr1 = 0.0f;
  std::int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m512i q0 = unpack_q4x2(w[b].qs, w[b + 1].qs);
    const __m512i q1 = unpack_q4x2(w[b + 2].qs, w[b + 3].qs);
    const __m512i x0 = load2x32(x[b].qs, x[b + 1].qs);
    const __m512i x1 = load2x32(x[b + 2].qs, x[b + 3].qs);
    const __m512i p0 = _mm512_dpbusd_epi32(zero, q0, x0);
    const __m512i p1 = _mm512_dpbusd_epi32(zero, q1, x1);
    const float d0 = _cvtsh_ss(w[b].d), d1 = _cvtsh_ss(w[b + 1].d);
    const float d2 = _cvtsh_ss(w[b + 2].d), d3 = _cvtsh_ss(w[b + 3].d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), scale2(d0 * x[b].d, d1 * x[b + 1].d), acc);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), scale2(d2 * x[b + 2].d, d3 * x[b + 3].d), acc1);
    corr += d0 * x[b].s + d1 * x[b + 1].s;
    corr1 += d2 * x[b + 2].s + d3 * x[b + 3].s;
  }
  acc = _mm512_add_ps(acc, acc1);
  corr += corr1;
  for (; b + 2 <= nb; b += 2) {
    const __m512i q = unpack_q4x2(w[b].qs, w[b + 1].qs);
    const __m512i xv = load2x32(x[b].qs, x[b + 1].qs);
    const __m512i p = _mm512_dpbusd_epi32(zero, q, xv);
    const float d0 = _cvtsh_ss(w[b].d), d1 = _cvtsh_ss(w[b + 1].d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale2(d0 * x[b].d, d1 * x[b + 1].d), acc);
    corr += d0 * x[b].s + d1 * x[b + 1].s;
  }
  float s = _mm512_reduce_add_ps(acc) - 8.0f * corr;
  for (; b < nb; ++b) {
    int a = 0;
    for (int j = 0; j < kQuantBlock / 2; ++j)
      a += ((w[b].qs[j] & 15) - 8) * x[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
    s += static_cast<float>(a) * _cvtsh_ss(w[b].d) * x[b].d;
  }
  return s;
}

KWAAI_AVX512 void f16_row(const std::uint16_t* src, float* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_f16x16(src + i));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

KWAAI_AVX512 void bf16_row(const std::uint16_t* src, float* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_bf16x16(src + i));
  for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

}  // namespace

const KernelTable* avx512_kernels() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vnni") && cpu_has_f16c() &&
                         __builtin_cpu_supports("fma");
  static const KernelTable t{"avx512-vnni", dot_f32,  dot_f16, dot_bf16,
                             dot_q8_0,      dot_q4_0, f16_row, bf16_row};
  return ok ? &t : nullptr;
}

}  // namespace kwaai::engine::cpu
