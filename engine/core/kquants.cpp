// K-quant reference conversions (engine/core/kquants.hpp). Written for exactness, not speed:
// these are the semantics every backend's kernels match.
#include "engine/core/kquants.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/core/dtype.hpp"

namespace kwaai::engine {

void k_scale_min(int j, const std::uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void k_pack_scale_min(const int sc[8], const int m[8], std::uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = static_cast<std::uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = static_cast<std::uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    q[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

namespace {

// Byte and shift of value i's nibble in a Q4_K / Q5_K qs[] (64-value pairs of sub-blocks).
int nib_byte(int i) {
  return (i / 64) * 32 + i % 32;
}
int nib_shift(int i) {
  return (i % 64) >= 32 ? 4 : 0;
}

// Q6_K: value i's low-nibble byte and shift in ql[], and its 2-bit field's shift in qh[].
struct Q6Pos {
  int ql, ql_shift, qh, qh_shift;
};
Q6Pos q6_pos(int i) {
  const int h = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
  return {64 * h + (quarter & 1) * 32 + l, quarter >= 2 ? 4 : 0, 32 * h + l, 2 * quarter};
}

// The code of v for x ~ s * q + b: round((v - b) / s) clamped to 0..nmax, through the
// reciprocal (a division per value made the K-quant encoders 7x slower than Q4_0's) and rounding
// half up (codes are non-negative; NaN gives 0).
// Clamped first, so t + 0.5 >= 0.5 and truncation is floor: no floor() call, which the baseline
// x86-64 build makes a libm call per value (a q4_k_s conversion of a 2-block Llama-3-8B-shaped
// f16 file took 27.4 s with it, 24.9 s without, byte-identical output).
inline float code_of(float v, float inv_s, float b, float nmax) {
  float t = (v - b) * inv_s;
  t = t > 0.0f ? t : 0.0f;  // NaN -> 0
  t = t < nmax ? t : nmax;
  return static_cast<float>(static_cast<int>(t + 0.5f));
}

// x ~ s * q - m with q in 0..nmax, s >= 0, m >= 0 (the minimum is never above 0, as in the
// format: a sub-block of positive values keeps m = 0 and uses the codes from 0 up). A min/max
// start, then least-squares refits of (s, -m) for the codes they give, keeping the best.
void fit_scale_min(const float* x, int n, int nmax, float& s_out, float& m_out) {
  float lo = 0.0f, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  float s = (hi - lo) / static_cast<float>(nmax), b = lo;  // x ~ s * q + b
  s_out = std::max(s, 0.0f);
  m_out = -b;
  if (!(s > 0.0f)) return;
  const float fmax = static_cast<float>(nmax);
  auto err_of = [&](float sv, float bv) {
    const float inv = 1.0f / sv;
    float e = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float d = sv * code_of(x[i], inv, bv, fmax) + bv - x[i];
      e += d * d;
    }
    return e;
  };
  float best = err_of(s, b);
  for (int it = 0; it < 4; ++it) {
    double sq = 0, sqq = 0, sx = 0, sqx = 0;
    const float inv = 1.0f / s;
    for (int i = 0; i < n; ++i) {
      const double q = code_of(x[i], inv, b, fmax);
      sq += q;
      sqq += q * q;
      sx += x[i];
      sqx += q * x[i];
    }
    const double det = n * sqq - sq * sq;
    if (!(det > 0.0)) break;
    double ns = (n * sqx - sq * sx) / det, nb = (sqq * sx - sq * sqx) / det;
    if (nb > 0.0) {  // the format's offset is a non-positive minimum
      nb = 0.0;
      ns = sqx / sqq;
    }
    if (!(ns > 0.0)) break;
    const float e = err_of(static_cast<float>(ns), static_cast<float>(nb));
    if (!(e < best)) break;
    best = e;
    s = static_cast<float>(ns);
    b = static_cast<float>(nb);
  }
  s_out = s;
  m_out = -b;
}

// Q4_K / Q5_K: eight (scale, min) pairs quantized to 6 bits against f16 d / dmin, then codes
// for the scales as stored.
template <int kNmax, typename Set>
void quantize_scale_min_block(const float* x, std::uint16_t& d_out, std::uint16_t& dmin_out,
                              std::uint8_t* scales, Set set_code) {
  float s[8], m[8];
  for (int j = 0; j < 8; ++j) fit_scale_min(x + 32 * j, 32, kNmax, s[j], m[j]);
  const float smax = *std::max_element(s, s + 8), mmax = *std::max_element(m, m + 8);
  d_out = f32_to_f16(smax / 63.0f);
  dmin_out = f32_to_f16(mmax / 63.0f);
  const float d = f16_to_f32(d_out), dmin = f16_to_f32(dmin_out);
  int sc[8], mq[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0.0f ? std::clamp(static_cast<int>(std::nearbyint(s[j] / d)), 0, 63) : 0;
    mq[j] = dmin > 0.0f ? std::clamp(static_cast<int>(std::nearbyint(m[j] / dmin)), 0, 63) : 0;
  }
  k_pack_scale_min(sc, mq, scales);
  for (int j = 0; j < 8; ++j) {
    const float es = d * static_cast<float>(sc[j]), em = dmin * static_cast<float>(mq[j]);
    const float inv = es > 0.0f ? 1.0f / es : 0.0f;
    for (int l = 0; l < 32; ++l)
      set_code(32 * j + l, es > 0.0f ? static_cast<int>(code_of(x[32 * j + l], inv, -em,
                                                                static_cast<float>(kNmax)))
                                     : 0);
  }
}

void check_whole(std::int64_t n) {
  if (n < 0 || n % kSuperBlock != 0)
    throw std::invalid_argument("K-quant rows need a multiple of 256 values, got " +
                                std::to_string(n));
}

}  // namespace

int q4_k_code(const BlockQ4_K& b, int i) {
  return (b.qs[nib_byte(i)] >> nib_shift(i)) & 15;
}
void q4_k_set_code(BlockQ4_K& b, int i, int q) {
  b.qs[nib_byte(i)] |= static_cast<std::uint8_t>((q & 15) << nib_shift(i));
}
int q5_k_code(const BlockQ5_K& b, int i) {
  const int bit = 2 * (i / 64) + ((i % 64) >= 32 ? 1 : 0);
  return ((b.qs[nib_byte(i)] >> nib_shift(i)) & 15) | (((b.qh[i % 32] >> bit) & 1) << 4);
}
void q5_k_set_code(BlockQ5_K& b, int i, int q) {
  const int bit = 2 * (i / 64) + ((i % 64) >= 32 ? 1 : 0);
  b.qs[nib_byte(i)] |= static_cast<std::uint8_t>((q & 15) << nib_shift(i));
  b.qh[i % 32] |= static_cast<std::uint8_t>(((q >> 4) & 1) << bit);
}
int q6_k_code(const BlockQ6_K& b, int i) {
  const Q6Pos p = q6_pos(i);
  return ((b.ql[p.ql] >> p.ql_shift) & 15) | (((b.qh[p.qh] >> p.qh_shift) & 3) << 4);
}
void q6_k_set_code(BlockQ6_K& b, int i, int q) {
  const Q6Pos p = q6_pos(i);
  b.ql[p.ql] |= static_cast<std::uint8_t>((q & 15) << p.ql_shift);
  b.qh[p.qh] |= static_cast<std::uint8_t>(((q >> 4) & 3) << p.qh_shift);
}

namespace {

// Q4_K and Q5_K share every rule but the code width: value = d * sc_j * code - dmin * m_j.
template <typename Block, int (*Code)(const Block&, int)>
void dequantize_scale_min(const Block* x, float* y, std::int64_t n) {
  check_whole(n);
  for (std::int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float d = f16_to_f32(x[b].d), dmin = f16_to_f32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {
      int sc = 0, m = 0;
      k_scale_min(j, x[b].scales, sc, m);
      const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l)
        y[b * kSuperBlock + 32 * j + l] = ds * static_cast<float>(Code(x[b], 32 * j + l)) - dm;
    }
  }
}

}  // namespace

void dequantize_row_q4_k(const BlockQ4_K* x, float* y, std::int64_t n) {
  dequantize_scale_min<BlockQ4_K, q4_k_code>(x, y, n);
}

void dequantize_row_q5_k(const BlockQ5_K* x, float* y, std::int64_t n) {
  dequantize_scale_min<BlockQ5_K, q5_k_code>(x, y, n);
}

void dequantize_row_q6_k(const BlockQ6_K* x, float* y, std::int64_t n) {
  check_whole(n);
  for (std::int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (int i = 0; i < kSuperBlock; ++i)
      y[b * kSuperBlock + i] =
          d * static_cast<float>(x[b].scales[i / 16]) * static_cast<float>(q6_k_code(x[b], i) - 32);
  }
}

void quantize_row_q4_k(const float* x, BlockQ4_K* y, std::int64_t n) {
  check_whole(n);
  for (std::int64_t b = 0; b < n / kSuperBlock; ++b) {
    BlockQ4_K& o = y[b];
    std::memset(&o, 0, sizeof o);
    quantize_scale_min_block<15>(x + b * kSuperBlock, o.d, o.dmin, o.scales,
                                 [&](int i, int q) { q4_k_set_code(o, i, q); });
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* y, std::int64_t n) {
  check_whole(n);
  for (std::int64_t b = 0; b < n / kSuperBlock; ++b) {
    BlockQ5_K& o = y[b];
    std::memset(&o, 0, sizeof o);
    quantize_scale_min_block<31>(x + b * kSuperBlock, o.d, o.dmin, o.scales,
                                 [&](int i, int q) { q5_k_set_code(o, i, q); });
  }
}

// Q6_K: per 16 values a signed scale that maps the value of largest magnitude to code -32 (as
// Q4_0 maps it to -8), refit by least squares for the codes it gives; the 16 scales become int8
// against d = max |scale| / 127, and the codes are recomputed for the scales as stored.
void quantize_row_q6_k(const float* x, BlockQ6_K* y, std::int64_t n) {
  check_whole(n);
  for (std::int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float* xb = x + b * kSuperBlock;
    BlockQ6_K& o = y[b];
    std::memset(&o, 0, sizeof o);
    float s[16];
    for (int j = 0; j < 16; ++j) {
      float amax = 0.0f, vmax = 0.0f;
      for (int l = 0; l < 16; ++l)
        if (std::fabs(xb[16 * j + l]) > amax) {
          amax = std::fabs(xb[16 * j + l]);
          vmax = xb[16 * j + l];
        }
      s[j] = vmax / -32.0f;
      if (s[j] != 0.0f) {
        double sqx = 0, sqq = 0;
        for (int l = 0; l < 16; ++l) {
          const float q = std::clamp(std::nearbyint(xb[16 * j + l] / s[j]), -32.0f, 31.0f);
          sqx += static_cast<double>(q) * xb[16 * j + l];
          sqq += static_cast<double>(q) * q;
        }
        if (sqq > 0.0) s[j] = static_cast<float>(sqx / sqq);
      }
    }
    float smax = 0.0f;
    for (float v : s) smax = std::max(smax, std::fabs(v));
    o.d = f32_to_f16(smax / 127.0f);
    const float d = f16_to_f32(o.d);
    for (int j = 0; j < 16; ++j) {
      const int sc =
          d > 0.0f ? std::clamp(static_cast<int>(std::nearbyint(s[j] / d)), -128, 127) : 0;
      o.scales[j] = static_cast<std::int8_t>(sc);
      const float es = d * static_cast<float>(sc);
      for (int l = 0; l < 16; ++l) {
        int q = 32;
        if (es != 0.0f) {
          const float t = std::nearbyint(xb[16 * j + l] / es);
          q = t == t ? std::clamp(static_cast<int>(std::clamp(t, -32.0f, 31.0f)), -32, 31) + 32
                     : 32;
        }
        q6_k_set_code(o, 16 * j + l, q);
      }
    }
  }
}

}  // namespace kwaai::engine
