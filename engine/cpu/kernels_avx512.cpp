// AVX-512 (F/BW/VL/DQ) + VNNI inner loops; two 32-value blocks per 512-bit register.
// Per-function target attributes, as in kernels_avx2.cpp, so nothing else in the binary
// needs AVX-512.
// GCC 12's own AVX-512 headers trip -W(maybe-)uninitialized (their _mm512_undefined_*
// helpers); the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

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

// quantize_act_q8 two 16-float halves at a time, with the same operations in the same order
// (|x| max, d = amax / 127, id = 1 / d, q = round-to-nearest-even(x * id)), so the bytes equal
// the scalar reference's; the MXCSR default rounding is what nearbyint uses too.
KWAAI_AVX512 void quantize_act(const float* x, BlockQ8Act* y, std::int64_t nb) {
  for (std::int64_t b = 0; b < nb; ++b) {
    const __m512 a = _mm512_loadu_ps(x + b * kQuantBlock);
    const __m512 c = _mm512_loadu_ps(x + b * kQuantBlock + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid));
    const __m512i qc = _mm512_cvtps_epi32(_mm512_mul_ps(c, vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm512_cvtepi32_epi8(qa));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), _mm512_cvtepi32_epi8(qc));
    y[b].d = d;
    y[b].s = d * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(qa, qc)));
  }
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

// Q4_0: codes are unsigned already, so vpdpbusd(q, x) applies directly; the -8 offset is
// folded in per block through the activation's s = d * sum(x).
//
// The main loop (q4_group, below) takes four blocks per step; a row's last two or three
// blocks go through q4_pair. Per pair of blocks (36 bytes: d0 qs0[16] d1 qs1[16]) one masked
// 64-byte load serves both the nibbles and the two f16 scales: qs start at an even offset, so
// one word permute lays the 32 code bytes out as [qs0 | qs0 | qs1 | qs1] (128-bit lanes), a
// masked shift moves the high nibbles down in lanes 1 and 3, and another word permute
// broadcasts d0/d1 to 8 lanes each. The activation's d and s of both blocks come from one
// 64-byte load by float permutes, and the epilogue is two vector FMAs: acc += dw * (p*xd - xs).
alignas(64) constexpr std::uint16_t kQ4PairCodeWords[32] = {
    1,  2,  3,  4,  5,  6,  7,  8,  1,  2,  3,  4,  5,  6,  7,  8,
    10, 11, 12, 13, 14, 15, 16, 17, 10, 11, 12, 13, 14, 15, 16, 17};
alignas(64) constexpr std::uint16_t kQ4PairScaleWords[32] = {
    0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
// BlockQ8Act is {float d; float s; int8 qs[32]}: 10 floats, so block b+1's d/s are floats 10/11.
alignas(64) constexpr std::uint32_t kActPairD[16] = {0,  0,  0,  0,  0,  0,  0,  0,
                                                     10, 10, 10, 10, 10, 10, 10, 10};
alignas(64) constexpr std::uint32_t kActPairS[16] = {1,  1,  1,  1,  1,  1,  1,  1,
                                                     11, 11, 11, 11, 11, 11, 11, 11};

// One pair of blocks into acc. Lanes 0..7 hold block b, lanes 8..15 block b + 1; each lane's
// integer dot covers 4 codes, so a block's 8 lanes sum to its q·x. Subtracting xs (= d_x · Σx)
// in each of the 8 lanes subtracts 8 · xs per block: the -8 offset of every code.
KWAAI_AVX512 inline __m512 q4_pair(const BlockQ4_0* w, const BlockQ8Act* x, __m512 acc,
                                   __m512i code_idx, __m512i scale_idx, __m512i act_d,
                                   __m512i act_s) {
  // Masked to the pair's 18 words, so the row's end is never overrun (only the row tail
  // comes here: the masked load streams several times slower from memory than a plain one).
  const __m512i raw = _mm512_maskz_loadu_epi16(0x3FFFF, w);
  __m512i q = _mm512_permutexvar_epi16(code_idx, raw);
  q = _mm512_mask_srli_epi16(q, 0xFF00FF00u, q, 4);
  q = _mm512_and_si512(q, _mm512_set1_epi8(15));
  const __m512 dw =
      _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_idx, raw)));
  const __m512 xf = _mm512_loadu_ps(x);  // block b (10 floats) and the first 6 of block b + 1
  const __m512 xd = _mm512_permutexvar_ps(act_d, xf);
  const __m512 xs = _mm512_permutexvar_ps(act_s, xf);
  const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, load2x32(x[0].qs, x[1].qs));
  return _mm512_fmadd_ps(dw, _mm512_fmsub_ps(_mm512_cvtepi32_ps(p), xd, xs), acc);
}

// Four blocks (72 bytes: d0 qs0 d1 qs1 d2 qs2 d3 qs3) per step, against the regrouped
// activation (ActGroup4). Every qs starts at an even byte (2, 20, 38, 56), so one two-source
// word permute of the loads at +0 and +8 lays the 64 code bytes out as [qs0|qs1|qs2|qs3]
// (block k in 128-bit lane k) and nothing past the group is read; the low nibbles then meet
// `lo` and the high nibbles `hi` in two chained vpdpbusd, and a word permute of the first
// load puts d_k in lanes 4k..4k+3. Per 128 values that is about half the work of the pair
// loop, which (as the main loop) held Q4_0 mat-vec at 34-40 GB/s, compute-bound.
alignas(64) constexpr std::uint16_t kQ4GroupCodeWords[32] = {
    1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
    19, 20, 21, 22, 23, 24, 25, 26, 56, 57, 58, 59, 60, 61, 62, 63};  // 56+: words 24.. of +8
alignas(64) constexpr std::uint16_t kQ4GroupScaleWords[32] = {
    0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27,
    0, 0, 0, 0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0,  0,  0};

// Lane 4k..4k+3 <- float k (activation d) and float 4 + k (activation s) of ActGroup4::ds.
alignas(64) constexpr std::uint32_t kGroupActD[16] = {0, 0, 0, 0, 1, 1, 1, 1,
                                                      2, 2, 2, 2, 3, 3, 3, 3};
alignas(64) constexpr std::uint32_t kGroupActS[16] = {4, 4, 4, 4, 5, 5, 5, 5,
                                                      6, 6, 6, 6, 7, 7, 7, 7};

KWAAI_AVX512 inline __m512 q4_group(const BlockQ4_0* w, const ActGroup4* g, __m512 acc,
                                    __m512i code_idx, __m512i scale_idx, __m512i low4,
                                    __m512i act_d, __m512i act_s) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(w);
  const __m512i a = _mm512_loadu_si512(p);
  const __m512i b = _mm512_loadu_si512(p + 8);
  const __m512i q = _mm512_permutex2var_epi16(a, code_idx, b);
  const __m512i lo = _mm512_and_si512(q, low4);
  const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
  __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(g->lo));
  dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512(g->hi));
  const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_idx, a)));
  const __m512 ds = _mm512_castps256_ps512(_mm256_loadu_ps(g->ds));
  const __m512 xd = _mm512_permutexvar_ps(act_d, ds);
  const __m512 xs = _mm512_permutexvar_ps(act_s, ds);
  return _mm512_fmadd_ps(dw, _mm512_fmsub_ps(_mm512_cvtepi32_ps(dot), xd, xs), acc);
}

KWAAI_AVX512 float dot_q4_0(const BlockQ4_0* w, const BlockQ8Act* x, const ActGroup4* g,
                            std::int64_t nb) {
  const __m512i code_idx = _mm512_load_si512(kQ4GroupCodeWords);
  const __m512i scale_idx = _mm512_load_si512(kQ4GroupScaleWords);
  const __m512i low4 = _mm512_set1_epi8(15);
  const __m512i act_d = _mm512_load_si512(kGroupActD);
  const __m512i act_s = _mm512_load_si512(kGroupActS);
  // Two independent accumulator chains (with one the loop waits on FMA latency).
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const std::int64_t groups = nb / 4;
  std::int64_t gi = 0;
  for (; gi + 2 <= groups; gi += 2) {
    acc0 = q4_group(w + gi * 4, g + gi, acc0, code_idx, scale_idx, low4, act_d, act_s);
    acc1 = q4_group(w + gi * 4 + 4, g + gi + 1, acc1, code_idx, scale_idx, low4, act_d, act_s);
  }
  if (gi < groups)
    acc0 = q4_group(w + gi * 4, g + gi, acc0, code_idx, scale_idx, low4, act_d, act_s);
  std::int64_t b = groups * 4;
  if (b + 2 <= nb) {
    acc1 = q4_pair(w + b, x + b, acc1, _mm512_load_si512(kQ4PairCodeWords),
                   _mm512_load_si512(kQ4PairScaleWords), _mm512_load_si512(kActPairD),
                   _mm512_load_si512(kActPairS));
    b += 2;
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; b < nb; ++b) {
    int a = 0;
    for (int j = 0; j < kQuantBlock / 2; ++j)
      a += ((w[b].qs[j] & 15) - 8) * x[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
    s += static_cast<float>(a) * _cvtsh_ss(w[b].d) * x[b].d;
  }
  return s;
}

// Batched decode: R activation rows against one weight row. The weight side of each step
// (loads, sign/abs or nibble split, scales) is done once and shared by the R rows, each of
// which keeps its own accumulator (R independent FMA chains).
template <int R>
KWAAI_AVX512 void q8_0_rows(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nb, float* out) {
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  std::int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m512i wv = load2x32(w[b].qs, w[b + 1].qs);
    const __m512i aw = _mm512_abs_epi8(wv);
    const __mmask64 neg = _mm512_movepi8_mask(wv);
    const float d0 = _cvtsh_ss(w[b].d), d1 = _cvtsh_ss(w[b + 1].d);
    for (int r = 0; r < R; ++r) {
      const BlockQ8Act* xr = x + r * nb;
      const __m512i xv = load2x32(xr[b].qs, xr[b + 1].qs);
      const __m512i p = _mm512_dpbusd_epi32(zero, aw, _mm512_mask_sub_epi8(xv, neg, zero, xv));
      acc[r] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale2(d0 * xr[b].d, d1 * xr[b + 1].d), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = _mm512_reduce_add_ps(acc[r]);
    if (b < nb) s += dot_q8_0(w + b, x + r * nb + b, nb - b);
    out[r] = s;
  }
}

template <int R>
KWAAI_AVX512 void q4_0_rows(const BlockQ4_0* w, const BlockQ8Act* x, const ActGroup4* g,
                            std::int64_t nb, float* out) {
  const __m512i code_idx = _mm512_load_si512(kQ4GroupCodeWords);
  const __m512i scale_idx = _mm512_load_si512(kQ4GroupScaleWords);
  const __m512i act_d = _mm512_load_si512(kGroupActD);
  const __m512i act_s = _mm512_load_si512(kGroupActS);
  const __m512i low4 = _mm512_set1_epi8(15);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const std::int64_t groups = nb / 4;
  for (std::int64_t gi = 0; gi < groups; ++gi) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(w + gi * 4);
    const __m512i a = _mm512_loadu_si512(p);
    const __m512i q = _mm512_permutex2var_epi16(a, code_idx, _mm512_loadu_si512(p + 8));
    const __m512i lo = _mm512_and_si512(q, low4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
    const __m512 dw =
        _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_idx, a)));
    for (int r = 0; r < R; ++r) {
      const ActGroup4* gr = g + r * groups + gi;
      __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(gr->lo));
      dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512(gr->hi));
      const __m512 ds = _mm512_castps256_ps512(_mm256_loadu_ps(gr->ds));
      acc[r] =
          _mm512_fmadd_ps(dw,
                          _mm512_fmsub_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(act_d, ds),
                                          _mm512_permutexvar_ps(act_s, ds)),
                          acc[r]);
    }
  }
  const std::int64_t tail = groups * 4;
  for (int r = 0; r < R; ++r) {
    float s = _mm512_reduce_add_ps(acc[r]);
    if (tail < nb) s += dot_q4_0(w + tail, x + r * nb + tail, nullptr, nb - tail);
    out[r] = s;
  }
}

// Rows 1..8 per call (the decode path's limit); more are taken eight at a time.
template <class One, class Many>
KWAAI_AVX512 void for_row_chunks(int rows, One one, Many many) {
  for (int r0 = 0; r0 < rows; r0 += kMaxDotRows) {
    switch (std::min(kMaxDotRows, rows - r0)) {
      case 1:
        one(r0);
        break;
      case 2:
        many(std::integral_constant<int, 2>{}, r0);
        break;
      case 3:
        many(std::integral_constant<int, 3>{}, r0);
        break;
      case 4:
        many(std::integral_constant<int, 4>{}, r0);
        break;
      case 5:
        many(std::integral_constant<int, 5>{}, r0);
        break;
      case 6:
        many(std::integral_constant<int, 6>{}, r0);
        break;
      case 7:
        many(std::integral_constant<int, 7>{}, r0);
        break;
      default:
        many(std::integral_constant<int, 8>{}, r0);
        break;
    }
  }
}

KWAAI_AVX512 void dot_q8_0_rows(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nb, int rows,
                                float* out) {
  for_row_chunks(
      rows, [&](int r0) { out[r0] = dot_q8_0(w, x + r0 * nb, nb); },
      [&](auto n, int r0) { q8_0_rows<decltype(n)::value>(w, x + r0 * nb, nb, out + r0); });
}

KWAAI_AVX512 void dot_q4_0_rows(const BlockQ4_0* w, const BlockQ8Act* x, const ActGroup4* g,
                                std::int64_t nb, int rows, float* out) {
  const std::int64_t ng = nb / 4;
  for_row_chunks(
      rows, [&](int r0) { out[r0] = dot_q4_0(w, x + r0 * nb, g + r0 * ng, nb); },
      [&](auto n, int r0) {
        q4_0_rows<decltype(n)::value>(w, x + r0 * nb, g + r0 * ng, nb, out + r0);
      });
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

KWAAI_AVX512 void axpy_f32(float a, const float* x, float* y, std::int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(
        y + i, m,
        _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// exp(x) to ~2 ulp: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so r is exact enough),
// e^r by its degree-7 Taylor polynomial (truncation < 6e-9 relative), times 2^n by vscalefps,
// which also gives 0 and inf past the float range. Inputs are clamped to [-104, 89] first
// (exp is 0 / inf beyond) so that r stays finite for infinite x; a NaN passes through.
KWAAI_AVX512 inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860676533018704e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

KWAAI_AVX512 float exp_sum_f32(float* x, float shift, std::int64_t n) {
  const __m512 vs = _mm512_set1_ps(shift);
  __m512 acc = _mm512_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
    _mm512_storeu_ps(x + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    _mm512_mask_storeu_ps(x + i, m, e);
    acc = _mm512_mask_add_ps(acc, m, acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

KWAAI_AVX512 inline __m512 silu_mul16(__m512 g, __m512 u) {
  const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

KWAAI_AVX512 void silu_mul_f32(const float* g, const float* u, float* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, silu_mul16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(
        out + i, m, silu_mul16(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, u + i)));
  }
}

}  // namespace

const KernelTable* avx512_kernels() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vnni") && cpu_has_f16c() &&
                         __builtin_cpu_supports("fma");
  static const KernelTable t{"avx512-vnni", dot_f32,  dot_f16,       dot_bf16,      quantize_act,
                             dot_q8_0,      dot_q4_0, dot_q8_0_rows, dot_q4_0_rows, f16_row,
                             bf16_row,      axpy_f32, exp_sum_f32,   silu_mul_f32};
  return ok ? &t : nullptr;
}

}  // namespace kwaai::engine::cpu
