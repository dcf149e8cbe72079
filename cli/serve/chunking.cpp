#include "cli/serve/chunking.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace kwaai::serve {

std::int64_t max_chunk_length(std::uint64_t max_chunk_size_bytes, std::int64_t max_heads,
                              std::int64_t batch, std::int64_t dtype_bytes,
                              std::int64_t prefix_length, std::int64_t seq_len) {
  if (max_heads <= 0 || batch <= 0 || dtype_bytes <= 0 || prefix_length < 0 || seq_len <= 0)
    throw std::invalid_argument("max_chunk_length: heads " + std::to_string(max_heads) +
                                ", batch " + std::to_string(batch) + ", dtype bytes " +
                                std::to_string(dtype_bytes) + ", prefix " +
                                std::to_string(prefix_length) + ", seq " + std::to_string(seq_len) +
                                " (all must be positive, prefix >= 0)");
  // All factors are bounded by the server limits (batch × seq <= max_batch_size, prefix + seq
  // <= inference_max_length), so the product fits easily in 64 bits.
  const auto per_token = static_cast<std::uint64_t>(max_heads) * static_cast<std::uint64_t>(batch) *
                         static_cast<std::uint64_t>(dtype_bytes) *
                         static_cast<std::uint64_t>(prefix_length + seq_len);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(max_chunk_size_bytes / per_token));
}

namespace {
void check_slice(std::size_t n, std::int64_t batch, std::int64_t tokens, std::int64_t hidden,
                 std::int64_t t0, std::int64_t t1, const char* what) {
  if (batch < 0 || tokens < 0 || hidden < 0 || t0 < 0 || t1 < t0 || t1 > tokens ||
      n != static_cast<std::size_t>(batch * tokens * hidden))
    throw std::invalid_argument(std::string(what) + ": tokens [" + std::to_string(t0) + ", " +
                                std::to_string(t1) + ") of [" + std::to_string(batch) + ", " +
                                std::to_string(tokens) + ", " + std::to_string(hidden) +
                                "] holding " + std::to_string(n) + " values");
}
}  // namespace

std::vector<float> slice_tokens(std::span<const float> x, std::int64_t batch, std::int64_t tokens,
                                std::int64_t hidden, std::int64_t t0, std::int64_t t1) {
  check_slice(x.size(), batch, tokens, hidden, t0, t1, "slice_tokens");
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(batch * (t1 - t0) * hidden));
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto from = x.begin() + (b * tokens + t0) * hidden;
    out.insert(out.end(), from, from + (t1 - t0) * hidden);
  }
  return out;
}

void place_tokens(std::span<const float> part, std::span<float> out, std::int64_t batch,
                  std::int64_t tokens, std::int64_t hidden, std::int64_t t0, std::int64_t t1) {
  check_slice(out.size(), batch, tokens, hidden, t0, t1, "place_tokens");
  if (part.size() != static_cast<std::size_t>(batch * (t1 - t0) * hidden))
    throw std::invalid_argument("place_tokens: part holds " + std::to_string(part.size()) +
                                " values, expected [" + std::to_string(batch) + ", " +
                                std::to_string(t1 - t0) + ", " + std::to_string(hidden) + "]");
  const std::int64_t row = (t1 - t0) * hidden;
  for (std::int64_t b = 0; b < batch; ++b)
    std::copy(part.begin() + b * row, part.begin() + (b + 1) * row,
              out.begin() + (b * tokens + t0) * hidden);
}

}  // namespace kwaai::serve
