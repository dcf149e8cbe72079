// Internal: the two ModelSource implementations behind open_model().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/model_source.hpp"

namespace kwaai::engine::detail {

std::unique_ptr<ModelSource> open_hf_source(const std::string& dir);
std::unique_ptr<ModelSource> open_gguf_source(const std::string& file);

// llama.cpp's GGUF name of a canonical (Llama-layout) HF tensor name; empty when it has none.
std::string gguf_tensor_name(const std::string& hf);
// Moves the rows of a q_proj / k_proj [heads * head_dim, K] between HF's rotate-half order and
// GGUF's interleaved order, in place on raw rows of any dtype (`to_gguf` picks the direction):
//   gguf_row[h*d + 2*i + j] = hf_row[h*d + j*d/2 + i]      (i < d/2, j in {0, 1}).
void permute_qk_rows(std::vector<std::byte>& rows, std::int64_t heads, std::int64_t head_dim,
                     bool to_gguf);

}  // namespace kwaai::engine::detail
