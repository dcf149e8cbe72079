// Element types of engine tensors and the scalar/block conversions every backend shares.
//
// Weights may be f32, f16, bf16, GGUF's block-quantized Q8_0 / Q4_0 or its K-quants Q4_K /
// Q5_K / Q6_K (engine/core/kquants.hpp); activations are f32.
// Block layouts are GGUF's byte for byte, so a GGUF tensor can be uploaded unchanged:
//   Q8_0: per 32 values { f16 d; int8 qs[32]; }                    value = qs[i] * d
//   Q4_0: per 32 values { f16 d; uint8 qs[16]; }  value[i] = ((qs[i] & 15) - 8) * d       (i < 16)
//                                                 value[i+16] = ((qs[i] >> 4) - 8) * d
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kwaai::engine {

// Appended formats keep the older values (a dtype's value is its row in the format table).
enum class DType : std::uint8_t { F32, F16, BF16, Q8_0, Q4_0, I32, U8, Q4_K, Q5_K, Q6_K };

inline constexpr std::int64_t kQuantBlock = 32;  // values per Q8_0 / Q4_0 block

struct BlockQ8_0 {
  std::uint16_t d;  // f16 scale
  std::int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  std::uint16_t d;  // f16 scale
  std::uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

std::string_view dtype_name(DType t);
// Parses the names dtype_name() prints ("f32", "q8_0", ...); throws std::invalid_argument.
DType dtype_from_name(std::string_view name);
bool is_quantized(DType t);
// Bytes taken by `n` consecutive elements; for quantized types n must be a multiple of the
// format's block (32, 256 for the K-quants; throws std::invalid_argument otherwise).
std::size_t dtype_bytes(DType t, std::int64_t n);

float f16_to_f32(std::uint16_t h);
std::uint16_t f32_to_f16(float f);  // round to nearest even, overflow -> inf
float bf16_to_f32(std::uint16_t h);
std::uint16_t f32_to_bf16(float f);  // round to nearest even, NaN stays NaN

// Row conversions (n values). Quantized rows need whole blocks.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, std::int64_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, std::int64_t n);
// Converts n values of any float/quantized type to f32.
void to_f32(DType t, const void* src, float* dst, std::int64_t n);
// Converts n f32 values to `t` (any format whose table row has from_f32).
void from_f32(DType t, const float* src, void* dst, std::int64_t n);

}  // namespace kwaai::engine
