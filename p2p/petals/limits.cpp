#include "p2p/petals/limits.hpp"

#include <cmath>
#include <string>

namespace kwaai::p2p::petals {

ServerLimits ServerLimits::petals_defaults(std::uint32_t num_key_value_groups) {
  ServerLimits l;
  // Grouped-query attention needs less cache per token, so Petals allows longer sessions and
  // larger tasks for it (server.py).
  if (num_key_value_groups > 1) {
    l.inference_max_length = 8192;
    l.max_batch_size = 8192;
  }
  return l;
}

Status ServerLimits::validate() const {
  if (inference_max_length < 1 || max_batch_size < 1 || max_chunk_size_bytes < 1 ||
      max_tensors_per_request < 1 || max_processed_step_ids < 1)
    return make_error(Errc::rejected, "server limits must be positive");
  for (double t : {max_alloc_timeout, session_timeout, step_timeout, request_timeout})
    if (!(t >= 0) || std::isinf(t))
      return make_error(Errc::rejected, "server timeouts must be finite and >= 0");
  return Ok{};
}

Status check_max_length(const ServerLimits& l, std::int64_t max_length) {
  if (max_length < 0 || static_cast<std::uint64_t>(max_length) > l.inference_max_length)
    return make_error(Errc::too_large,
                      "Cannot allocate KV cache for max_length=" + std::to_string(max_length) +
                          " tokens, max = " + std::to_string(l.inference_max_length));
  return Ok{};
}

Status check_task_size(const ServerLimits& l, std::uint64_t batch, std::uint64_t tokens) {
  // Overflow-safe product check.
  if (batch != 0 && tokens > l.max_batch_size / batch)
    return make_error(Errc::too_large,
                      "Task size greater than max_batch_size (" + std::to_string(l.max_batch_size) +
                          "), it can't be processed (batch " + std::to_string(batch) + " x " +
                          std::to_string(tokens) + " tokens)");
  return Ok{};
}

Status check_positions(std::uint64_t prefix_length, std::uint64_t new_tokens,
                       std::uint64_t max_length) {
  if (new_tokens > max_length || prefix_length > max_length - new_tokens)
    return make_error(Errc::too_large,
                      "Maximum length exceeded: prefix " + std::to_string(prefix_length) +
                          " + current " + std::to_string(new_tokens) +
                          " exceeds pre-allocated maximum " + std::to_string(max_length));
  return Ok{};
}

Result<double> clamp_alloc_timeout(const ServerLimits& l, double requested) {
  if (!(requested >= 0)) return make_error(Errc::rejected, "alloc_timeout must be >= 0");
  return std::min(requested, l.max_alloc_timeout);
}

}  // namespace kwaai::p2p::petals
