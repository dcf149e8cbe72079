// The weight-format table and the per-format row conversions it points at. The conversions
// are the reference semantics every backend matches (written for exactness, not speed).
#include "engine/core/formats.hpp"

#include "engine/core/kquants.hpp"

#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

namespace kwaai::engine {

namespace {

void f32_to(const void* s, float* d, std::int64_t n) {
  std::memcpy(d, s, static_cast<std::size_t>(n) * 4);
}
void f32_from(const float* s, void* d, std::int64_t n) {
  std::memcpy(d, s, static_cast<std::size_t>(n) * 4);
}
void f16_to(const void* src, float* d, std::int64_t n) {
  const auto* s = static_cast<const std::uint16_t*>(src);
  for (std::int64_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
}
void f16_from(const float* s, void* dst, std::int64_t n) {
  auto* d = static_cast<std::uint16_t*>(dst);
  for (std::int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(s[i]);
}
void bf16_to(const void* src, float* d, std::int64_t n) {
  // bf16_to_f32 inline (a shift), so the loop vectorizes: bf16 checkpoints are decoded here at
  // load time, value by value through a call it took ~1/4 of a 70B span's load.
  const auto* s = static_cast<const std::uint16_t*>(src);
  for (std::int64_t i = 0; i < n; ++i)
    d[i] = std::bit_cast<float>(static_cast<std::uint32_t>(s[i]) << 16);
}
void bf16_from(const float* s, void* dst, std::int64_t n) {
  auto* d = static_cast<std::uint16_t*>(dst);
  for (std::int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(s[i]);
}
void q8_0_to(const void* src, float* dst, std::int64_t n) {
  const auto* s = static_cast<const BlockQ8_0*>(src);
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float d = f16_to_f32(s[b].d);
    for (int j = 0; j < kQuantBlock; ++j) dst[b * kQuantBlock + j] = s[b].qs[j] * d;
  }
}
void q8_0_from(const float* s, void* d, std::int64_t n) {
  quantize_row_q8_0(s, static_cast<BlockQ8_0*>(d), n);
}
void q4_0_to(const void* src, float* dst, std::int64_t n) {
  const auto* s = static_cast<const BlockQ4_0*>(src);
  constexpr int half = kQuantBlock / 2;
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float d = f16_to_f32(s[b].d);
    float* o = dst + b * kQuantBlock;
    for (int j = 0; j < half; ++j) {
      o[j] = ((s[b].qs[j] & 15) - 8) * d;
      o[j + half] = ((s[b].qs[j] >> 4) - 8) * d;
    }
  }
}
void q4_0_from(const float* s, void* d, std::int64_t n) {
  quantize_row_q4_0(s, static_cast<BlockQ4_0*>(d), n);
}
void q4_k_to(const void* s, float* d, std::int64_t n) {
  dequantize_row_q4_k(static_cast<const BlockQ4_K*>(s), d, n);
}
void q4_k_from(const float* s, void* d, std::int64_t n) {
  quantize_row_q4_k(s, static_cast<BlockQ4_K*>(d), n);
}
void q5_k_to(const void* s, float* d, std::int64_t n) {
  dequantize_row_q5_k(static_cast<const BlockQ5_K*>(s), d, n);
}
void q5_k_from(const float* s, void* d, std::int64_t n) {
  quantize_row_q5_k(s, static_cast<BlockQ5_K*>(d), n);
}
void q6_k_to(const void* s, float* d, std::int64_t n) {
  dequantize_row_q6_k(static_cast<const BlockQ6_K*>(s), d, n);
}
void q6_k_from(const float* s, void* d, std::int64_t n) {
  quantize_row_q6_k(s, static_cast<BlockQ6_K*>(d), n);
}

// GGUF type ids: ggml.h's enum ggml_type (F32 0, F16 1, Q4_0 2, Q8_0 8, Q4_K 12, Q5_K 13,
// Q6_K 14, I8 24, I32 26, BF16 30).
constexpr FormatInfo kFormats[] = {
    {.dtype = DType::F32,
     .name = "f32",
     .block_elems = 1,
     .block_bytes = 4,
     .gguf_type = 0,
     .weight = true,
     .load_quant = false,
     .cpu_packed = false,
     .vk_wtype = 0,
     .to_f32 = f32_to,
     .from_f32 = f32_from},
    {.dtype = DType::F16,
     .name = "f16",
     .block_elems = 1,
     .block_bytes = 2,
     .gguf_type = 1,
     .weight = true,
     .load_quant = false,
     .cpu_packed = true,
     .vk_wtype = 1,
     .to_f32 = f16_to,
     .from_f32 = f16_from},
    {.dtype = DType::BF16,
     .name = "bf16",
     .block_elems = 1,
     .block_bytes = 2,
     .gguf_type = 30,
     .weight = true,
     .load_quant = false,
     .cpu_packed = true,
     .vk_wtype = 2,
     .to_f32 = bf16_to,
     .from_f32 = bf16_from},
    {.dtype = DType::Q8_0,
     .name = "q8_0",
     .block_elems = kQuantBlock,
     .block_bytes = sizeof(BlockQ8_0),
     .gguf_type = 8,
     .weight = true,
     .load_quant = true,
     .cpu_packed = true,
     .vk_wtype = 3,
     .to_f32 = q8_0_to,
     .from_f32 = q8_0_from},
    {.dtype = DType::Q4_0,
     .name = "q4_0",
     .block_elems = kQuantBlock,
     .block_bytes = sizeof(BlockQ4_0),
     .gguf_type = 2,
     .weight = true,
     .load_quant = true,
     .cpu_packed = true,
     .vk_wtype = 4,
     .to_f32 = q4_0_to,
     .from_f32 = q4_0_from},
    {.dtype = DType::I32,
     .name = "i32",
     .block_elems = 1,
     .block_bytes = 4,
     .gguf_type = 26,
     .weight = false,
     .load_quant = false,
     .cpu_packed = false,
     .vk_wtype = -1,
     .to_f32 = nullptr,
     .from_f32 = nullptr},
    {.dtype = DType::U8,
     .name = "u8",
     .block_elems = 1,
     .block_bytes = 1,
     .gguf_type = -1,
     .weight = false,
     .load_quant = false,
     .cpu_packed = false,
     .vk_wtype = -1,
     .to_f32 = nullptr,
     .from_f32 = nullptr},
    {.dtype = DType::Q4_K,
     .name = "q4_k",
     .block_elems = kSuperBlock,
     .block_bytes = sizeof(BlockQ4_K),
     .gguf_type = 12,
     .weight = true,
     .load_quant = true,
     .cpu_packed = true,
     .vk_wtype = 5,
     .to_f32 = q4_k_to,
     .from_f32 = q4_k_from},
    {.dtype = DType::Q5_K,
     .name = "q5_k",
     .block_elems = kSuperBlock,
     .block_bytes = sizeof(BlockQ5_K),
     .gguf_type = 13,
     .weight = true,
     .load_quant = true,
     .cpu_packed = true,
     .vk_wtype = 6,
     .to_f32 = q5_k_to,
     .from_f32 = q5_k_from},
    {.dtype = DType::Q6_K,
     .name = "q6_k",
     .block_elems = kSuperBlock,
     .block_bytes = sizeof(BlockQ6_K),
     .gguf_type = 14,
     .weight = true,
     .load_quant = true,
     .cpu_packed = true,
     .vk_wtype = 7,
     .to_f32 = q6_k_to,
     .from_f32 = q6_k_from},
};

constexpr bool table_in_dtype_order() {
  for (std::size_t i = 0; i < std::size(kFormats); ++i)
    if (static_cast<std::size_t>(kFormats[i].dtype) != i) return false;
  return true;
}
static_assert(table_in_dtype_order(), "kFormats rows must follow the DType enum order");

}  // namespace

std::span<const FormatInfo> formats() {
  return kFormats;
}

const FormatInfo& format_info(DType t) {
  const auto i = static_cast<std::size_t>(t);
  if (i >= std::size(kFormats))
    throw std::invalid_argument("unknown dtype value " + std::to_string(i));
  return kFormats[i];
}

const FormatInfo* find_format(std::string_view name) {
  for (const auto& f : kFormats)
    if (f.name == name) return &f;
  return nullptr;
}

const FormatInfo* find_gguf_format(std::uint32_t gguf_type) {
  for (const auto& f : kFormats)
    if (f.gguf_type >= 0 && static_cast<std::uint32_t>(f.gguf_type) == gguf_type) return &f;
  return nullptr;
}

std::string format_names(bool (*keep)(const FormatInfo&)) {
  std::string s;
  for (const auto& f : kFormats) {
    if (!keep(f)) continue;
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s;
}

Quant quant_from_name(std::string_view s) {
  if (s == "none") return kNoQuant;
  if (const FormatInfo* f = find_format(s); f && f->load_quant) return f->dtype;
  throw std::invalid_argument("unknown quantization '" + std::string(s) + "' (" +
                              quant_choices(", ") + ")");
}

std::string quant_name(Quant q) {
  return q ? std::string(format_info(*q).name) : "none";
}

std::string quant_choices(std::string_view sep) {
  std::string s = "none";
  for (const auto& f : kFormats)
    if (f.load_quant) s += std::string(sep) + std::string(f.name);
  return s;
}

}  // namespace kwaai::engine
