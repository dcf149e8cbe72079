// GGUF -> GGUF re-quantization (`kwaainet quantize`), as llama-quantize does it: every matrix is
// decoded to f32 and encoded in the type the mix gives it, norms and other vectors keep their
// type, and every metadata key (tokenizer included) is copied, with general.file_type set to
// the mix. The _M mixes give attn_v and ffn_down of some layers and the LM head more bits by
// llama.cpp's rule (src/llama-quant.cpp, llama_tensor_get_type): use_more_bits(i, n) =
// i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2, for the Llama family (not its Falcon or MoE
// branches). The encoders are this project's (engine/core), not ggml's, so the bytes differ from
// llama-quantize's for the same input; the types per tensor are the same.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "engine/core/tensor.hpp"

namespace kwaai::engine {

enum class QuantMix { Q8_0, Q4_0, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K };

// "q8_0", "q4_0", "q4_k_s" (or "q4_k"), "q4_k_m", "q5_k_s" (or "q5_k"), "q5_k_m", "q6_k";
// throws std::invalid_argument listing them.
QuantMix quant_mix_from_name(std::string_view name);
std::string quant_mix_name(QuantMix m);
std::string quant_mix_choices();  // "q8_0 | q4_0 | ..."
// llama.cpp's LLAMA_FTYPE value for general.file_type.
std::uint32_t quant_mix_file_type(QuantMix m);

// The type tensor `gguf_name` (GGUF naming: blk.N.attn_v.weight, output.weight, ...) of row-major
// `shape` gets in a model of `n_layers` blocks; `has_output`: the file has its own output.weight
// (else token_embd is the LM head and is treated as it). Vectors keep `stored`. A row length that
// is not a whole number of the type's blocks takes Q8_0 if it is a multiple of 32, else f16.
DType quant_mix_type(QuantMix m, const std::string& gguf_name, const Shape& shape, DType stored,
                     std::int64_t n_layers, bool has_output);

struct QuantizeReport {
  std::int64_t tensors = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  double seconds = 0;
  std::map<DType, std::int64_t> count;  // tensors written per type
};

// Reads `in` (a GGUF file), writes `out`; rows are converted on `threads` threads. Throws
// std::runtime_error naming the file or tensor on bad input (an unsupported tensor type is
// refused by the reader, naming it).
QuantizeReport quantize_gguf(const std::string& in, const std::string& out, QuantMix mix,
                             int threads);

// An HF Llama-family checkpoint folder (config.json, safetensors, tokenizer.json) written as a
// llama-architecture GGUF file of `mix`, as llama.cpp's convert + llama-quantize would: GGUF
// tensor names, q/k rows in GGUF's interleaved rotary order, the llama.* metadata from the
// config, the tokenizer as tokenizer.ggml.* (Tokenizer::write_gguf_metadata); norms in f32.
// Refused by name (std::runtime_error): other families, a sliding window or Llama-3 rope
// scaling (which a llama GGUF carries as a rope_freqs tensor this reader refuses), and a folder
// without tokenizer.json.
QuantizeReport quantize_hf(const std::string& dir, const std::string& out, QuantMix mix,
                           int threads);

}  // namespace kwaai::engine
