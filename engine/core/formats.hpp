// The weight-format table: one row per element type, and the only place that says what a
// format is. Everything that needs to know a format reads this row — its name on the command
// line and in profiles, its GGUF type id, its block geometry, whether it may be a weight or a
// load-time quantization target, how the CPU backend stores it, which Vulkan weight decoder
// (kernels/weights.glsl WTYPE) reads it, and its f32 conversions. Adding a format is adding a
// row here plus the kernels the row points at; docs/architecture.md has the checklist.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/core/dtype.hpp"

namespace kwaai::engine {

struct FormatInfo {
  DType dtype;
  std::string_view name;     // "q4_0": CLI values, profile labels, kernel variant suffixes
  std::int64_t block_elems;  // values per block (1 for plain types)
  std::size_t block_bytes;   // bytes per block
  std::int32_t gguf_type;    // ggml type id in GGUF files; -1: no GGUF form
  bool weight;               // accepted as a matmul / embedding weight
  bool load_quant;           // a `--quant` target for float checkpoints
  // The CPU backend stores it as 16-row interleaved groups for its packed kernels (int8 dots
  // for block formats, f32 FMAs for 16-bit floats; engine/cpu/qpack.hpp); false: rows as in
  // the host layout.
  bool cpu_packed;
  int vk_wtype;  // WTYPE of kernels/weights.glsl (matmul_*_<name>, embedding_<name>); -1: none
  // n values (n % block_elems == 0) to / from f32; nullptr for the integer types.
  void (*to_f32)(const void* src, float* dst, std::int64_t n);
  void (*from_f32)(const float* src, void* dst, std::int64_t n);

  double bytes_per_value() const {
    return static_cast<double>(block_bytes) / static_cast<double>(block_elems);
  }
};

// Every row, in DType order (formats()[i].dtype == DType(i)).
std::span<const FormatInfo> formats();
const FormatInfo& format_info(DType t);  // throws std::invalid_argument for a bad value
const FormatInfo* find_format(std::string_view name);
const FormatInfo* find_gguf_format(std::uint32_t gguf_type);

// "f32, f16, bf16, q8_0, q4_0": the names of the rows `keep` accepts, for messages and --help.
std::string format_names(bool (*keep)(const FormatInfo&));
inline bool is_weight_format(const FormatInfo& f) {
  return f.weight;
}
inline bool is_load_quant_format(const FormatInfo& f) {
  return f.load_quant;
}

// Load-time weight quantization: nullopt keeps each tensor's stored format; otherwise a
// format whose row has load_quant.
using Quant = std::optional<DType>;
inline constexpr Quant kNoQuant = std::nullopt;
// "none" or a load_quant format name; throws std::invalid_argument listing the valid values.
Quant quant_from_name(std::string_view s);
std::string quant_name(Quant q);  // "none", "q8_0", ...
// "none" followed by every load_quant format name (CLI choices).
std::string quant_choices(std::string_view sep = " | ");

}  // namespace kwaai::engine
