// Petals' max_chunk_size_bytes: a long inference step is run as several shorter passes one
// after another (TransformerBackend.inference_step / _estimate_max_chunk_length), so the
// attention logits of one pass stay within the configured size. Each chunk attends to the
// cache written by the chunks before it, so the result equals one pass.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kwaai::serve {

// max(1, max_chunk_size_bytes // (max_heads × batch × dtype_bytes × (prefix_length + seq_len)))
// — the new tokens one pass may take. Inputs must be positive except prefix_length (>= 0).
std::int64_t max_chunk_length(std::uint64_t max_chunk_size_bytes, std::int64_t max_heads,
                              std::int64_t batch, std::int64_t dtype_bytes,
                              std::int64_t prefix_length, std::int64_t seq_len);

// Tokens [t0, t1) of every row of x f32[batch, tokens, hidden], as f32[batch, t1 - t0, hidden].
std::vector<float> slice_tokens(std::span<const float> x, std::int64_t batch, std::int64_t tokens,
                                std::int64_t hidden, std::int64_t t0, std::int64_t t1);

// Writes part f32[batch, t1 - t0, hidden] into tokens [t0, t1) of out f32[batch, tokens, hidden].
void place_tokens(std::span<const float> part, std::span<float> out, std::int64_t batch,
                  std::int64_t tokens, std::int64_t hidden, std::int64_t t0, std::int64_t t1);

}  // namespace kwaai::serve
