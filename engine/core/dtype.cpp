// Scalar conversions and GGUF block quantizers. These are the reference semantics every
// backend must match, so they are written for clarity and exactness rather than speed (the
// CPU backend has its own vectorised inner loops for the hot paths).
#include "engine/core/dtype.hpp"

#include "engine/core/formats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace kwaai::engine {

namespace {

void check_block_multiple(DType t, std::int64_t n, const char* what) {
  if (n < 0) throw std::invalid_argument(std::string(what) + ": negative element count");
  const std::int64_t b = format_info(t).block_elems;
  if (n % b != 0)
    throw std::invalid_argument(std::string(what) + ": " + std::string(dtype_name(t)) +
                                " needs a multiple of " + std::to_string(b) + " elements, got " +
                                std::to_string(n));
}

}  // namespace

std::string_view dtype_name(DType t) {
  return format_info(t).name;
}

DType dtype_from_name(std::string_view name) {
  if (const FormatInfo* f = find_format(name)) return f->dtype;
  throw std::invalid_argument("unknown dtype name '" + std::string(name) + "' (expected " +
                              format_names([](const FormatInfo&) { return true; }) + ")");
}

bool is_quantized(DType t) {
  return format_info(t).block_elems > 1;
}

std::size_t dtype_bytes(DType t, std::int64_t n) {
  check_block_multiple(t, n, "dtype_bytes");
  const auto& i = format_info(t);
  return static_cast<std::size_t>(n / i.block_elems) * i.block_bytes;
}

// IEEE binary16 <-> binary32 by bit manipulation (exact, handles subnormals, inf, NaN).
float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal: value = mant * 2^-24, exact in f32.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(bits);
}

std::uint16_t f32_to_f16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return sign | 0x7e00u | static_cast<std::uint16_t>((absx >> 13) & 0x3ffu);
  if (absx >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520 -> inf
  if (absx < 0x38800000u) {
    // Result is subnormal (or zero): value / 2^-24 rounded to nearest even integer.
    const float a = std::bit_cast<float>(absx);
    const float scaled = a * 0x1p24f;                                   // exact (power of two)
    const auto m = static_cast<std::uint16_t>(std::nearbyint(scaled));  // default mode: RNE
    return sign | m;  // m == 0x400 becomes the smallest normal, which is the right encoding
  }
  // Normal: drop 13 mantissa bits with round-to-nearest-even; a carry into the exponent is
  // the correct result (including overflow to inf, excluded above).
  std::uint32_t r = absx - (112u << 23);
  r += 0xfffu + ((r >> 13) & 1u);
  return sign | static_cast<std::uint16_t>(r >> 13);
}

float bf16_to_f32(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

std::uint16_t f32_to_bf16(float f) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(x >> 16);
}

// ggml's quantize_row_q8_0_ref: d = absmax / 127, q = round-half-away(x * (1/d)).
void quantize_row_q8_0(const float* x, BlockQ8_0* y, std::int64_t n) {
  check_block_multiple(DType::Q8_0, n, "quantize_row_q8_0");
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (int j = 0; j < kQuantBlock; ++j)
      y[b].qs[j] = static_cast<std::int8_t>(std::round(xb[j] * id));
  }
}

// ggml's quantize_row_q4_0_ref. The scale carries the sign of the value of largest
// magnitude, d = max / -8, so that value maps exactly to code 0 (i.e. -8 * d = max) and
// the codes of the other values, x / d + 8 in [0.5, 16.5] before truncation, land in 0..16;
// ggml truncates x / d + 8.5 toward zero (a cast) and clamps the top to 15. We clamp the
// bottom at 0 as well, which only matters for NaN input.
void quantize_row_q4_0(const float* x, BlockQ4_0* y, std::int64_t n) {
  check_block_multiple(DType::Q4_0, n, "quantize_row_q4_0");
  constexpr int half = kQuantBlock / 2;
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f, vmax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        vmax = xb[j];
      }
    }
    const float d = vmax / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    auto code = [&](float v) {
      const float t = v * id + 8.5f;
      if (!(t >= 0.0f)) return 0;
      return std::min(15, static_cast<int>(t));
    };
    for (int j = 0; j < half; ++j)
      y[b].qs[j] = static_cast<std::uint8_t>(code(xb[j]) | (code(xb[j + half]) << 4));
  }
}

void to_f32(DType t, const void* src, float* dst, std::int64_t n) {
  check_block_multiple(t, n, "to_f32");
  const FormatInfo& f = format_info(t);
  if (!f.to_f32)
    throw std::invalid_argument("to_f32: " + std::string(f.name) +
                                " is not a float or quantized type");
  f.to_f32(src, dst, n);
}

void from_f32(DType t, const float* src, void* dst, std::int64_t n) {
  check_block_multiple(t, n, "from_f32");
  const FormatInfo& f = format_info(t);
  if (!f.from_f32)
    throw std::invalid_argument("from_f32: " + std::string(f.name) +
                                " is not a float or quantized type");
  f.from_f32(src, dst, n);
}

}  // namespace kwaai::engine
