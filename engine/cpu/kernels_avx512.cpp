// AVX-512 (F/BW/VL/DQ) + VNNI inner loops; two 32-value blocks per 512-bit register.
// Per-function target attributes, as in kernels_avx2.cpp, so nothing else in the binary
// needs AVX-512.
// GCC 12's own AVX-512 headers trip -W(maybe-)uninitialized (their _mm512_undefined_*
// helpers); the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <utility>

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
    y[b].sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qc));
  }
}

// Packed-weight kernel (engine/cpu/qpack.hpp): MR activation rows against NG (1 or 2) 16-row
// groups. Each 64-byte chunk is 16 rows x 4 codes, so one vpdpbusd per activation row and group
// adds 4 products to each of 16 row sums; a chunk's load and unsigned conversion are shared by
// the MR rows, and each row's 4 activation codes, broadcast once, by the NG groups. Q8_0 codes
// become unsigned by flipping the sign bit (c + 128), Q4_0 nibbles are unsigned already
// (value + 8); both offsets are taken out by starting each block's int32 sums at the tile's
// bias (-offset * sum(a)). The block's sums then meet the scales in two float operations per
// row and group: (sum * da) * dw + acc.
// Shape: 6 rows x 2 groups. 12 rows x 1 group (the first shape) spent one broadcast memory
// operand per vpdpbusd and ran at 72-74% of the int8 peak with everything in L1; 6 x 2 halves
// the broadcasts and runs at 78-80% (Q8_0) and 76-78% (Q4_0) on the same data (Zen 5). Both use
// 2 * MR * NG + 6 of the 32 zmm registers.
// The loops are unrolled by pragma: left to itself GCC 12 kept a rolled chunk loop with the
// accumulators copied between two register sets and the float sums on the stack, and the Q8_0
// kernel ran at 53% of the int8 peak instead of ~70%.
//
// Blocks ahead to prefetch when the weights stream (ActTile::stream). The codes and scales of a
// group are two streams the hardware prefetchers follow poorly at 4 KiB page ends; asking 8
// blocks (2-4 KiB) ahead took decode from memory (16 distinct 14336x4096 matrices) from 22-27 to
// 34-37 GB/s here.
constexpr int kPrefetchBlocks = 8;

// 4 activation codes at p in every int32 lane.
KWAAI_AVX512 inline __m512i bcast4(const std::int8_t* p, int byte) {
  std::int32_t v;
  __builtin_memcpy(&v, p + byte, 4);
  return _mm512_set1_epi32(v);
}

// K-quant code vectors (engine/cpu/qpack.hpp): the low (values 4c..4c+3) or high (16+4c..)
// codes of chunk c of a group's block `blk`, the high bits of Q5_K / Q6_K moved in from their
// plane chunks with one shift and mask (the shift count is a template argument so that it is
// an immediate in every build).
template <PackCode C, int c, bool High>
KWAAI_AVX512 inline __m512i kcode(const std::uint8_t* blk) {
  const __m512i v = _mm512_load_si512(blk + c * 64);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m512i q = High ? _mm512_and_si512(_mm512_srli_epi16(v, 4), low4) : _mm512_and_si512(v, low4);
  if constexpr (C == PackCode::Q5_K) {
    const __m512i p = _mm512_load_si512(blk + 4 * 64);
    __m512i t;
    if constexpr (High)
      t = _mm512_srli_epi16(p, c);
    else
      t = _mm512_slli_epi16(p, 4 - c);
    q = _mm512_or_si512(q, _mm512_and_si512(t, _mm512_set1_epi8(0x10)));
  } else if constexpr (C == PackCode::Q6_K) {
    const __m512i p = _mm512_load_si512(blk + (High ? 5 : 4) * 64);
    __m512i t;
    if constexpr (c < 3)
      t = _mm512_slli_epi16(p, 4 - 2 * c);
    else
      t = _mm512_srli_epi16(p, 2);
    q = _mm512_or_si512(q, _mm512_and_si512(t, _mm512_set1_epi8(0x30)));
  }
  return q;
}

// Chunk c of a K-quant block for every row and group: the low codes (Part 0), the high ones
// (Part 1) or both (Part 2) against their broadcast activation words.
template <int MR, int NG, PackCode C, int c, int Part>
KWAAI_AVX512 inline void kstep(const std::uint8_t* const* blk, const std::int8_t* qa,
                               __m512i (&acc)[MR][NG]) {
  if constexpr (Part != 1) {
    __m512i w[NG];
#pragma GCC unroll 2
    for (int g = 0; g < NG; ++g) w[g] = kcode<C, c, false>(blk[g]);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512i x = bcast4(qa + m * 32, 4 * c);
#pragma GCC unroll 2
      for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], w[g], x);
    }
  }
  if constexpr (Part != 0) {
    __m512i w[NG];
#pragma GCC unroll 2
    for (int g = 0; g < NG; ++g) w[g] = kcode<C, c, true>(blk[g]);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512i x = bcast4(qa + m * 32, 16 + 4 * c);
#pragma GCC unroll 2
      for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], w[g], x);
    }
  }
}

template <int MR, int NG, PackCode C, int Part>
KWAAI_AVX512 inline void kblock(const std::uint8_t* const* blk, const std::int8_t* qa,
                                __m512i (&acc)[MR][NG]) {
  kstep<MR, NG, C, 0, Part>(blk, qa, acc);
  kstep<MR, NG, C, 1, Part>(blk, qa, acc);
  kstep<MR, NG, C, 2, Part>(blk, qa, acc);
  kstep<MR, NG, C, 3, Part>(blk, qa, acc);
}

// 16 lanes' u8 (or int8) scale bytes at p as floats.
KWAAI_AVX512 inline __m512 scale_u8(const std::uint8_t* p) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
KWAAI_AVX512 inline __m512 scale_i8(const std::uint8_t* p) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
KWAAI_AVX512 inline __m512 half16(const std::uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

template <int MR, int NG, PackCode C>
KWAAI_AVX512 void gemm_mr(const std::uint8_t* codes, const std::uint16_t* scales,
                          std::size_t group_bytes, std::int64_t nb, const ActTile& a, float* y,
                          std::int64_t ldy, int n_valid, bool accumulate) {
  constexpr bool Q4 = C == PackCode::Q4_0;
  constexpr bool K = pack_kquant(C);
  constexpr std::size_t cb = pack_code_bytes(C);  // code bytes per row and block
  constexpr std::size_t kMeta = pack_meta_bytes(C);
  const std::int8_t* qa = a.qs;
  const float* da = a.d;
  const std::int32_t* bias = a.bias;
  const std::uint8_t* wg[NG];
  const std::uint16_t* sg[NG];
  __mmask16 keep[NG];
#pragma GCC unroll 2
  for (int g = 0; g < NG; ++g) {
    wg[g] = codes + g * group_bytes;
    sg[g] = scales + g * group_bytes / 2;
    const int v = std::clamp(n_valid - 16 * g, 0, 16);
    keep[g] = v >= 16 ? 0xffff : static_cast<__mmask16>((1u << v) - 1);
  }
  __m512 facc[MR][NG];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
    for (int g = 0; g < NG; ++g)
      facc[m][g] =
          accumulate ? _mm512_maskz_loadu_ps(keep[g], y + m * ldy + 16 * g) : _mm512_setzero_ps();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const bool stream = a.stream;
  for (std::int64_t b = 0; b < nb; ++b) {
    // Decode streams each weight byte once: ask for the codes and scales a few blocks ahead.
    // (Past the group's end this touches the next group or the allocation's slack: prefetches
    // never fault.)
    if (stream) {
#pragma GCC unroll 2
      for (int g = 0; g < NG; ++g) {
        const std::uint8_t* ahead = wg[g] + (b + kPrefetchBlocks) * 16 * cb;
        for (std::size_t l = 0; l < 16 * cb; l += 64)
          _mm_prefetch(reinterpret_cast<const char*>(ahead + l), _MM_HINT_T0);
        if constexpr (K) {
          // The next super-block's scale record, once per super-block.
          if (b % 8 == 0) {
            const auto* next = reinterpret_cast<const char*>(sg[g]) + (b / 8 + 1) * kMeta;
            for (std::size_t l = 0; l < kMeta; l += 64) _mm_prefetch(next + l, _MM_HINT_T0);
          }
        } else {
          _mm_prefetch(reinterpret_cast<const char*>(sg[g] + (b + kPrefetchBlocks) * 16),
                       _MM_HINT_T0);
        }
      }
    }
    if constexpr (K) {
      const std::uint8_t* blk[NG];
      const std::uint8_t* rec[NG];
#pragma GCC unroll 2
      for (int g = 0; g < NG; ++g) {
        blk[g] = wg[g] + b * 16 * cb;
        rec[g] = reinterpret_cast<const std::uint8_t*>(sg[g]) + (b / 8) * kMeta;
      }
      const int j = static_cast<int>(b % 8);
      const std::int32_t* hsum = a.hsum + b * MR;
      const float* dbias = a.dbias + b * MR;
      __m512i acc[MR][NG];
      if constexpr (C == PackCode::Q6_K) {
        // Two 16-value halves with their own scales: the low codes, folded, then the high ones.
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
          for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_set1_epi32(-32 * hsum[m]);
        kblock<MR, NG, C, 0>(blk, qa, acc);
#pragma GCC unroll 2
        for (int g = 0; g < NG; ++g) {
          const __m512 dl = _mm512_mul_ps(half16(rec[g]), scale_i8(rec[g] + 32 + 16 * (2 * j)));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m)
            facc[m][g] =
                _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[m][g]), _mm512_set1_ps(da[m])),
                                dl, facc[m][g]);
        }
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
          for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_set1_epi32(32 * (bias[m] + hsum[m]));
        kblock<MR, NG, C, 1>(blk, qa, acc);
#pragma GCC unroll 2
        for (int g = 0; g < NG; ++g) {
          const __m512 dh = _mm512_mul_ps(half16(rec[g]), scale_i8(rec[g] + 32 + 16 * (2 * j + 1)));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m)
            facc[m][g] =
                _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[m][g]), _mm512_set1_ps(da[m])),
                                dh, facc[m][g]);
        }
      } else {
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
          for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_setzero_si512();
        kblock<MR, NG, C, 2>(blk, qa, acc);
#pragma GCC unroll 2
        for (int g = 0; g < NG; ++g) {
          const __m512 dw = _mm512_mul_ps(half16(rec[g]), scale_u8(rec[g] + 64 + 16 * j));
          const __m512 mw = _mm512_mul_ps(half16(rec[g] + 32), scale_u8(rec[g] + 192 + 16 * j));
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) {
            const __m512 t =
                _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[m][g]), _mm512_set1_ps(da[m])),
                                dw, facc[m][g]);
            facc[m][g] = _mm512_fmadd_ps(mw, _mm512_set1_ps(dbias[m]), t);
          }
        }
      }
      qa += MR * 32;
      da += MR;
      bias += MR;
      continue;
    }
    __m512i acc[MR][NG];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512i bi = _mm512_set1_epi32(bias[m]);
#pragma GCC unroll 2
      for (int g = 0; g < NG; ++g) acc[m][g] = bi;
    }
    if constexpr (Q4) {
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        __m512i lo[NG], hi[NG];
#pragma GCC unroll 2
        for (int g = 0; g < NG; ++g) {
          const __m512i v = _mm512_load_si512(wg[g] + b * 16 * cb + c * 64);
          lo[g] = _mm512_and_si512(v, low4);
          hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        }
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
          const __m512i x = bcast4(qa + m * 32, 4 * c);
#pragma GCC unroll 2
          for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], lo[g], x);
        }
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
          const __m512i x = bcast4(qa + m * 32, 16 + 4 * c);
#pragma GCC unroll 2
          for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], hi[g], x);
        }
      }
    } else {
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        __m512i v[NG];
#pragma GCC unroll 2
        for (int g = 0; g < NG; ++g)
          v[g] = _mm512_xor_si512(_mm512_load_si512(wg[g] + b * 16 * cb + c * 64), flip);
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
          const __m512i x = bcast4(qa + m * 32, 4 * c);
#pragma GCC unroll 2
          for (int g = 0; g < NG; ++g) acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], v[g], x);
        }
      }
    }
    __m512 dw[NG];
#pragma GCC unroll 2
    for (int g = 0; g < NG; ++g)
      dw[g] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sg[g] + b * 16)));
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512 dm = _mm512_set1_ps(da[m]);
#pragma GCC unroll 2
      for (int g = 0; g < NG; ++g)
        facc[m][g] =
            _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[m][g]), dm), dw[g], facc[m][g]);
    }
    qa += MR * 32;
    da += MR;
    bias += MR;
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
    for (int g = 0; g < NG; ++g) _mm512_mask_storeu_ps(y + m * ldy + 16 * g, keep[g], facc[m][g]);
}

constexpr int kAvx512GemmRows = 6;
constexpr int kAvx512GemmGroups = 2;
// The 16-bit float kernels keep 12-row tiles (one widening per 12 FMAs) and prefetch for tiles
// of up to 8 rows (decode).
constexpr int kAvx512HalfRows = 12;
constexpr int kPrefetchMaxRows = 8;

// 16-bit float weights: each step is one 32-byte load widened to 16 rows' values (F16C's
// vcvtph2ps, or a shift for bf16) and one FMA per tile row against its value broadcast from the
// transposed tile. (AVX512-BF16's vdpbf16ps would need the activations rounded to bf16; they
// stay f32 here, so f16/bf16 weights keep the f32 activation accuracy the tests hold them to.)
template <int MR, bool BF16>
KWAAI_AVX512 void gemm_half_mr(const std::uint16_t* w, std::int64_t nk, const FloatTile& a,
                               float* y, std::int64_t ldy, int n_valid, bool accumulate) {
  constexpr int C = half_chains(MR);
  const __mmask16 keep = n_valid >= 16 ? 0xffff : static_cast<__mmask16>((1u << n_valid) - 1);
  __m512 facc[MR][C];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    facc[m][0] = accumulate ? _mm512_maskz_loadu_ps(keep, y + m * ldy) : _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int c = 1; c < C; ++c) facc[m][c] = _mm512_setzero_ps();
  }
  const float* xt = a.xt;
  auto step = [&](std::int64_t k, int c) KWAAI_AVX512 {
    const __m256i raw = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + k * 16));
    const __m512 wv = BF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16))
                           : _mm512_cvtph_ps(raw);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
      facc[m][c] = _mm512_fmadd_ps(_mm512_set1_ps(xt[k * MR + m]), wv, facc[m][c]);
  };
  std::int64_t k = 0;
  for (; k + C <= nk; k += C) {
    if constexpr (MR <= kPrefetchMaxRows)  // decode streams the weights: 4 KiB ahead
      for (int c = 0; c < C; c += 2)
        _mm_prefetch(reinterpret_cast<const char*>(w + (k + c + 128) * 16), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) step(k + c, c);
  }
  for (int c = 0; k < nk; ++k, ++c) step(k, c);
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    __m512 v = facc[m][0];
    if constexpr (C == 4)
      v = _mm512_add_ps(_mm512_add_ps(facc[m][0], facc[m][1]),
                        _mm512_add_ps(facc[m][2], facc[m][3]));
    else if constexpr (C == 2)
      v = _mm512_add_ps(facc[m][0], facc[m][1]);
    _mm512_mask_storeu_ps(y + m * ldy, keep, v);
  }
}

template <bool BF16, int... R>
KWAAI_AVX512 void gemm_half_by_rows(std::integer_sequence<int, R...>, const std::uint16_t* w,
                                    std::int64_t nk, const FloatTile& a, float* y, std::int64_t ldy,
                                    int n_valid, bool accumulate) {
  (void)((a.mr == R + 1 &&
          (gemm_half_mr<R + 1, BF16>(w, nk, a, y, ldy, n_valid, accumulate), true)) ||
         ...);
}

template <bool BF16>
KWAAI_AVX512 void gemm_half(const std::uint16_t* w, std::int64_t nk, const FloatTile& a, float* y,
                            std::int64_t ldy, int n_valid, bool accumulate) {
  gemm_half_by_rows<BF16>(std::make_integer_sequence<int, kAvx512HalfRows>{}, w, nk, a, y, ldy,
                          n_valid, accumulate);
}

// 12 independent vpdpbusd chains (enough to cover the instruction's latency at full
// throughput; the gemm kernel keeps 12 int32 block sums): 12 x 64 MACs a round.
KWAAI_AVX512 std::int64_t int8_peak_loop(std::int64_t iters, std::int32_t* sink) {
  __m512i acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_epi32(j);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (std::int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
  __m512i s = acc[0];
  for (int j = 1; j < 12; ++j) s = _mm512_add_epi32(s, acc[j]);
  *sink = _mm512_reduce_add_epi32(s);
  return iters * 12 * 64;
}

template <PackCode Q4, int... R>
KWAAI_AVX512 void gemm_by_rows(std::integer_sequence<int, R...>, const std::uint8_t* codes,
                               const std::uint16_t* scales, std::size_t group_bytes, int groups,
                               std::int64_t nb, const ActTile& a, float* y, std::int64_t ldy,
                               int n_valid, bool accumulate) {
  const bool two = groups > 1 && n_valid > 16;
  (void)((a.mr == R + 1 && ((two ? gemm_mr<R + 1, 2, Q4>(codes, scales, group_bytes, nb, a, y, ldy,
                                                         n_valid, accumulate)
                                 : gemm_mr<R + 1, 1, Q4>(codes, scales, group_bytes, nb, a, y, ldy,
                                                         std::min(n_valid, 16), accumulate)),
                            true)) ||
         ...);
}

template <PackCode Q4>
KWAAI_AVX512 void gemm(const std::uint8_t* codes, const std::uint16_t* scales,
                       std::size_t group_bytes, int groups, std::int64_t nb, const ActTile& a,
                       float* y, std::int64_t ldy, int n_valid, bool accumulate) {
  gemm_by_rows<Q4>(std::make_integer_sequence<int, kAvx512GemmRows>{}, codes, scales, group_bytes,
                   groups, nb, a, y, ldy, n_valid, accumulate);
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

// Scores of up to 8 query rows against a chunk of 16 transposed keys: each step of d is one
// load of 16 key values and one FMA per row against the row's q[d] broadcast (8 accumulators,
// 8 FMAs per load) - no horizontal sums.
template <int R>
KWAAI_AVX512 void scores_rows(const float* q, std::int64_t D, const float* kt, __mmask16 keep,
                              float* s, std::int64_t lds) {
  __m512 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (std::int64_t d = 0; d < D; ++d) {
    const __m512 kv = _mm512_loadu_ps(kt + d * 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * D + d]), kv, acc[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(s + r * lds, keep, acc[r]);
}

KWAAI_AVX512 void attn_scores(const float* q, int rows, const float* kts, int keys, std::int64_t D,
                              float* s, std::int64_t lds) {
  for (int j0 = 0; j0 < keys; j0 += 16) {
    const int n = std::min(16, keys - j0);
    const float* kt = kts + (j0 / 16) * D * 16;
    const __mmask16 keep = static_cast<__mmask16>((1u << n) - 1);
    int r = 0;
    for (; r + 8 <= rows; r += 8) scores_rows<8>(q + r * D, D, kt, keep, s + r * lds + j0, lds);
    for (; r + 4 <= rows; r += 4) scores_rows<4>(q + r * D, D, kt, keep, s + r * lds + j0, lds);
    for (; r < rows; ++r) scores_rows<1>(q + r * D, D, kt, keep, s + r * lds + j0, lds);
  }
}

// o[r] += sum_j p[r][j] v_j for 4 rows x 64 output columns at a time (16 accumulators): each
// key's 4 vectors of v feed 16 FMAs against the rows' weights broadcast.
template <int R>
KWAAI_AVX512 void accumulate_rows(const float* p, std::int64_t ldp, const float* v,
                                  std::int64_t ldv, int keys, std::int64_t D, float* o) {
  for (std::int64_t c0 = 0; c0 < D; c0 += 64) {
    __mmask16 m[4];
    for (int c = 0; c < 4; ++c) {
      const std::int64_t left = D - c0 - 16 * c;
      m[c] = left >= 16 ? 0xffff : left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1);
    }
    __m512 acc[R][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_maskz_loadu_ps(m[c], o + r * D + c0 + 16 * c);
    for (int j = 0; j < keys; ++j) {
      __m512 vv[4];
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) vv[c] = _mm512_maskz_loadu_ps(m[c], v + j * ldv + c0 + 16 * c);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512 w = _mm512_set1_ps(p[r * ldp + j]);
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_fmadd_ps(w, vv[c], acc[r][c]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(o + r * D + c0 + 16 * c, m[c], acc[r][c]);
  }
}

KWAAI_AVX512 void attn_accumulate(const float* p, std::int64_t ldp, int rows, const float* v,
                                  std::int64_t ldv, int keys, std::int64_t D, float* o) {
  int r = 0;
  for (; r + 4 <= rows; r += 4) accumulate_rows<4>(p + r * ldp, ldp, v, ldv, keys, D, o + r * D);
  for (; r < rows; ++r) accumulate_rows<1>(p + r * ldp, ldp, v, ldv, keys, D, o + r * D);
}

}  // namespace

const KernelTable* avx512_kernels() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vnni") && cpu_has_f16c() &&
                         __builtin_cpu_supports("fma");
  static const KernelTable t{.name = "avx512-vnni",
                             .dot_f32 = dot_f32,
                             .quantize_act = quantize_act,
                             .gemm_q8_0 = gemm<PackCode::Q8_0>,
                             .gemm_q4_0 = gemm<PackCode::Q4_0>,
                             .gemm_q4_k = gemm<PackCode::Q4_K>,
                             .gemm_q5_k = gemm<PackCode::Q5_K>,
                             .gemm_q6_k = gemm<PackCode::Q6_K>,
                             .gemm_f16 = gemm_half<false>,
                             .gemm_bf16 = gemm_half<true>,
                             .gemm_rows = kAvx512GemmRows,
                             .gemm_groups = kAvx512GemmGroups,
                             .gemm_half_rows = kAvx512HalfRows,
                             .q8_0_act_offset = 128,
                             .q4_0_act_offset = 8,
                             .int8_peak_loop = int8_peak_loop,
                             .axpy_f32 = axpy_f32,
                             .exp_sum_f32 = exp_sum_f32,
                             .silu_mul_f32 = silu_mul_f32,
                             .attn_scores = attn_scores,
                             .attn_accumulate = attn_accumulate};
  return ok ? &t : nullptr;
}

}  // namespace kwaai::engine::cpu
