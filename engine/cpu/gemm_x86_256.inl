// The packed-weight kernel (engine/cpu/qpack.hpp) on 256-bit registers, shared by the AVX2
// table and the AVX-VNNI table. Included inside an anonymous namespace by kernels_avx2.cpp and
// kernels_avx_vnni.cpp, each with KWAAI_GEMM256_TARGET set to its own target attribute and
// KWAAI_GEMM256_VNNI to 0 or 1, so each file gets its own copy compiled for its instruction set
// and neither can leak instructions into the other.
//
// A ymm register holds 8 of a group's 16 rows (4 codes each), so a group is done in two passes
// of 8 rows: each pass keeps MR float accumulators and MR int32 block sums in registers (16 ymm
// in all), reading its half of each 64-byte chunk. Without VNNI the int8 products go through
// vpmaddubsw (u8 x s8 -> pairs of s16) and vpmaddwd (pairs -> s32): Q4_0 nibbles are small
// enough never to saturate the s16 pair (15 * 127 * 2); Q8_0 moves the weight's sign onto the
// activation (|w| * (a * sign(w)), at most 128 * 127 * 2 < 32768), so its act offset is 0. With
// AVX-VNNI, vpdpbusd does both steps, and Q8_0 codes are flipped to unsigned as on AVX-512.

constexpr int kGemm256Rows = 4;

KWAAI_GEMM256_TARGET inline __m256i bcast4_256(const std::int8_t* p, int byte) {
  std::int32_t v;
  __builtin_memcpy(&v, p + byte, 4);
  return _mm256_set1_epi32(v);
}

// acc + the 4-product sums of unsigned u and signed s in each int32 lane.
KWAAI_GEMM256_TARGET inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if KWAAI_GEMM256_VNNI
  return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// K-quant code vectors for 8 rows (kernels_avx512.cpp's kcode, on half a chunk).
template <PackCode C, int c, bool High>
KWAAI_GEMM256_TARGET inline __m256i kcode256(const std::uint8_t* blk) {
  const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + c * 64));
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256i q = High ? _mm256_and_si256(_mm256_srli_epi16(v, 4), low4) : _mm256_and_si256(v, low4);
  if constexpr (C == PackCode::Q5_K) {
    const __m256i p = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + 4 * 64));
    __m256i t;
    if constexpr (High)
      t = _mm256_srli_epi16(p, c);
    else
      t = _mm256_slli_epi16(p, 4 - c);
    q = _mm256_or_si256(q, _mm256_and_si256(t, _mm256_set1_epi8(0x10)));
  } else if constexpr (C == PackCode::Q6_K) {
    const __m256i p =
        _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + (High ? 5 : 4) * 64));
    __m256i t;
    if constexpr (c < 3)
      t = _mm256_slli_epi16(p, 4 - 2 * c);
    else
      t = _mm256_srli_epi16(p, 2);
    q = _mm256_or_si256(q, _mm256_and_si256(t, _mm256_set1_epi8(0x30)));
  }
  return q;
}

template <int MR, PackCode C, int c, int Part>
KWAAI_GEMM256_TARGET inline void kstep256(const std::uint8_t* blk, const std::int8_t* qa,
                                          __m256i (&acc)[MR]) {
  if constexpr (Part != 1) {
    const __m256i w = kcode256<C, c, false>(blk);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) acc[m] = dot_u8s8(acc[m], w, bcast4_256(qa + m * 32, 4 * c));
  }
  if constexpr (Part != 0) {
    const __m256i w = kcode256<C, c, true>(blk);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) acc[m] = dot_u8s8(acc[m], w, bcast4_256(qa + m * 32, 16 + 4 * c));
  }
}

template <int MR, PackCode C, int Part>
KWAAI_GEMM256_TARGET inline void kblock256(const std::uint8_t* blk, const std::int8_t* qa,
                                           __m256i (&acc)[MR]) {
  kstep256<MR, C, 0, Part>(blk, qa, acc);
  kstep256<MR, C, 1, Part>(blk, qa, acc);
  kstep256<MR, C, 2, Part>(blk, qa, acc);
  kstep256<MR, C, 3, Part>(blk, qa, acc);
}

KWAAI_GEMM256_TARGET inline __m256 scale8_u8(const std::uint8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
KWAAI_GEMM256_TARGET inline __m256 scale8_i8(const std::uint8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
KWAAI_GEMM256_TARGET inline __m256 half8(const std::uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <int MR, PackCode C>
KWAAI_GEMM256_TARGET void gemm256_mr(const std::uint8_t* codes, const std::uint16_t* scales,
                                     std::int64_t nb, const ActTile& a, float* y, std::int64_t ldy,
                                     int n_valid, bool accumulate) {
  constexpr bool Q4 = C == PackCode::Q4_0;
  constexpr bool K = pack_kquant(C);
  constexpr std::size_t cb = pack_code_bytes(C);
  constexpr std::size_t kMeta = pack_meta_bytes(C);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int h = 0; h < 2; ++h) {
    const int valid = std::min(8, n_valid - 8 * h);
    if (valid <= 0) break;
    __m256 facc[MR];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      alignas(32) float start[8] = {};
      if (accumulate)
        for (int r = 0; r < valid; ++r) start[r] = y[m * ldy + 8 * h + r];
      facc[m] = _mm256_load_ps(start);
    }
    const std::int8_t* qa = a.qs;
    const float* da = a.d;
    const std::int32_t* bias = a.bias;
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::uint8_t* wc = codes + b * 16 * cb + h * 32;
      // As on AVX-512: decode streams the weights, so fetch 8 blocks ahead (first pass only;
      // the second pass finds the lines in cache; prefill tiles find them there anyway).
      if (h == 0 && a.stream) {
        for (std::size_t l = 0; l < 16 * cb; l += 64)
          _mm_prefetch(reinterpret_cast<const char*>(wc + 8 * 16 * cb + l), _MM_HINT_T0);
        if constexpr (K) {
          if (b % 8 == 0) {
            const auto* next = reinterpret_cast<const char*>(scales) + (b / 8 + 1) * kMeta;
            for (std::size_t l = 0; l < kMeta; l += 64) _mm_prefetch(next + l, _MM_HINT_T0);
          }
        } else {
          _mm_prefetch(reinterpret_cast<const char*>(scales + (b + 8) * 16), _MM_HINT_T0);
        }
      }
      if constexpr (K) {
        const auto* rec = reinterpret_cast<const std::uint8_t*>(scales) + (b / 8) * kMeta;
        const int j = static_cast<int>(b % 8);
        const std::int32_t* hsum = a.hsum + b * MR;
        const float* dbias = a.dbias + b * MR;
        __m256i acc[MR];
        if constexpr (C == PackCode::Q6_K) {
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) acc[m] = _mm256_set1_epi32(-32 * hsum[m]);
          kblock256<MR, C, 0>(wc, qa, acc);
          const __m256 d = half8(rec + 16 * h);
          const __m256 dl = _mm256_mul_ps(d, scale8_i8(rec + 32 + 16 * (2 * j) + 8 * h));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m)
            facc[m] = _mm256_fmadd_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(acc[m]), _mm256_set1_ps(da[m])), dl, facc[m]);
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) acc[m] = _mm256_set1_epi32(32 * (bias[m] + hsum[m]));
          kblock256<MR, C, 1>(wc, qa, acc);
          const __m256 dh = _mm256_mul_ps(d, scale8_i8(rec + 32 + 16 * (2 * j + 1) + 8 * h));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m)
            facc[m] = _mm256_fmadd_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(acc[m]), _mm256_set1_ps(da[m])), dh, facc[m]);
        } else {
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) acc[m] = _mm256_setzero_si256();
          kblock256<MR, C, 2>(wc, qa, acc);
          const __m256 dw =
              _mm256_mul_ps(half8(rec + 16 * h), scale8_u8(rec + 64 + 16 * j + 8 * h));
          const __m256 mw =
              _mm256_mul_ps(half8(rec + 32 + 16 * h), scale8_u8(rec + 192 + 16 * j + 8 * h));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) {
            const __m256 t = _mm256_fmadd_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(acc[m]), _mm256_set1_ps(da[m])), dw, facc[m]);
            facc[m] = _mm256_fmadd_ps(mw, _mm256_set1_ps(dbias[m]), t);
          }
        }
        qa += MR * 32;
        da += MR;
        bias += MR;
        continue;
      }
      __m256i acc[MR];
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) acc[m] = _mm256_set1_epi32(bias[m]);
      if constexpr (Q4) {
#pragma GCC unroll 16
        for (int c = 0; c < 4; ++c) {
          const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(wc + c * 64));
          const __m256i lo = _mm256_and_si256(v, low4);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m)
            acc[m] = dot_u8s8(acc[m], lo, bcast4_256(qa + m * 32, 4 * c));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m)
            acc[m] = dot_u8s8(acc[m], hi, bcast4_256(qa + m * 32, 16 + 4 * c));
        }
      } else {
#pragma GCC unroll 16
        for (int c = 0; c < 8; ++c) {
          const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(wc + c * 64));
#if KWAAI_GEMM256_VNNI
          const __m256i u = _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) acc[m] = dot_u8s8(acc[m], u, bcast4_256(qa + m * 32, 4 * c));
#else
          const __m256i u = _mm256_abs_epi8(v);
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m)
            acc[m] = dot_u8s8(acc[m], u, _mm256_sign_epi8(bcast4_256(qa + m * 32, 4 * c), v));
#endif
        }
      }
      const __m256 dw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + b * 16 + h * 8)));
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m)
        facc[m] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[m]), _mm256_set1_ps(da[m])),
                                  dw, facc[m]);
      qa += MR * 32;
      da += MR;
      bias += MR;
    }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      float* row = y + m * ldy + 8 * h;
      if (valid == 8) {
        _mm256_storeu_ps(row, facc[m]);
      } else {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, facc[m]);
        for (int r = 0; r < valid; ++r) row[r] = tmp[r];
      }
    }
  }
}

// 16-bit float weights, as on AVX-512, 8 rows per pass.
template <int MR, bool BF16>
KWAAI_GEMM256_TARGET void gemm_half256_mr(const std::uint16_t* w, std::int64_t nk,
                                          const FloatTile& a, float* y, std::int64_t ldy,
                                          int n_valid, bool accumulate) {
  for (int h = 0; h < 2; ++h) {
    const int valid = std::min(8, n_valid - 8 * h);
    if (valid <= 0) break;
    constexpr int C = half_chains(MR);
    __m256 facc[MR][C];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      alignas(32) float start[8] = {};
      if (accumulate)
        for (int r = 0; r < valid; ++r) start[r] = y[m * ldy + 8 * h + r];
      facc[m][0] = _mm256_load_ps(start);
      for (int c = 1; c < C; ++c) facc[m][c] = _mm256_setzero_ps();
    }
    const float* xt = a.xt;
    for (std::int64_t k = 0; k < nk; ++k) {
      if (h == 0 && (k & 1) == 0)
        _mm_prefetch(reinterpret_cast<const char*>(w + (k + 128) * 16), _MM_HINT_T0);
      const __m128i raw = _mm_load_si128(reinterpret_cast<const __m128i*>(w + k * 16 + 8 * h));
      const __m256 wv = BF16
                            ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16))
                            : _mm256_cvtph_ps(raw);
      const int c = static_cast<int>(k % C);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m)
        facc[m][c] = _mm256_fmadd_ps(_mm256_set1_ps(xt[k * MR + m]), wv, facc[m][c]);
    }
    for (int m = 0; m < MR; ++m) {
      __m256 v = facc[m][0];
      if constexpr (C == 4)
        v = _mm256_add_ps(_mm256_add_ps(facc[m][0], facc[m][1]),
                          _mm256_add_ps(facc[m][2], facc[m][3]));
      else if constexpr (C == 2)
        v = _mm256_add_ps(facc[m][0], facc[m][1]);
      float* row = y + m * ldy + 8 * h;
      if (valid == 8) {
        _mm256_storeu_ps(row, v);
      } else {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, v);
        for (int r = 0; r < valid; ++r) row[r] = tmp[r];
      }
    }
  }
}

template <bool BF16, int... R>
KWAAI_GEMM256_TARGET void gemm_half256_by_rows(std::integer_sequence<int, R...>,
                                               const std::uint16_t* w, std::int64_t nk,
                                               const FloatTile& a, float* y, std::int64_t ldy,
                                               int n_valid, bool accumulate) {
  (void)((a.mr == R + 1 &&
          (gemm_half256_mr<R + 1, BF16>(w, nk, a, y, ldy, n_valid, accumulate), true)) ||
         ...);
}

template <bool BF16>
KWAAI_GEMM256_TARGET void gemm_half256(const std::uint16_t* w, std::int64_t nk, const FloatTile& a,
                                       float* y, std::int64_t ldy, int n_valid, bool accumulate) {
  gemm_half256_by_rows<BF16>(std::make_integer_sequence<int, kGemm256Rows>{}, w, nk, a, y, ldy,
                             n_valid, accumulate);
}

// 8 independent chains of the kernel's int8 dot step: 8 x 32 MACs a round.
KWAAI_GEMM256_TARGET std::int64_t int8_peak_loop256(std::int64_t iters, std::int32_t* sink) {
  __m256i acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_set1_epi32(j);
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
  for (std::int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 8; ++j) acc[j] = dot_u8s8(acc[j], a, b);
  __m256i s = acc[0];
  for (int j = 1; j < 8; ++j) s = _mm256_add_epi32(s, acc[j]);
  alignas(32) std::int32_t v[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
  *sink = v[0] + v[7];
  return iters * 8 * 32;
}

template <PackCode Q4, int... R>
KWAAI_GEMM256_TARGET void gemm256_by_rows(std::integer_sequence<int, R...>,
                                          const std::uint8_t* codes, const std::uint16_t* scales,
                                          std::int64_t nb, const ActTile& a, float* y,
                                          std::int64_t ldy, int n_valid, bool accumulate) {
  (void)((a.mr == R + 1 &&
          (gemm256_mr<R + 1, Q4>(codes, scales, nb, a, y, ldy, n_valid, accumulate), true)) ||
         ...);
}

template <PackCode Q4>
KWAAI_GEMM256_TARGET void gemm256(const std::uint8_t* codes, const std::uint16_t* scales,
                                  std::int64_t nb, const ActTile& a, float* y, std::int64_t ldy,
                                  int n_valid, bool accumulate) {
  gemm256_by_rows<Q4>(std::make_integer_sequence<int, kGemm256Rows>{}, codes, scales, nb, a, y, ldy,
                      n_valid, accumulate);
}
