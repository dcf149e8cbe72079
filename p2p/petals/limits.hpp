// The server-side limits Petals enforces (server.py, handler.py, task_pool.py, memory_cache.py,
// backend.py), with Petals' defaults, and the checks that turn an oversized request into the
// error Petals would raise. Clients size their requests to these, so the defaults matter.
#pragma once

#include <cstddef>
#include <cstdint>

#include "p2p/petals/common.hpp"

namespace kwaai::p2p::petals {

struct ServerLimits {
  std::uint64_t inference_max_length = 2048;  // 8192 when num_key_value_groups > 1
  std::uint64_t max_batch_size = 2048;        // tokens per task (batch × seq); 8192 likewise
  std::uint64_t max_chunk_size_bytes = 256ull << 20;
  double max_alloc_timeout = 600;  // seconds, caps the client's alloc_timeout
  double session_timeout = 1800;
  double step_timeout = 300;
  double request_timeout = 180;
  // Not in Petals (it relies on the 4 MiB / stream limits): bounds of ours on what one
  // request may carry, checked before any tensor is decoded.
  std::size_t max_tensors_per_request = 16;
  std::size_t max_processed_step_ids = 8192;  // remembered for de-duplication

  // Petals' defaults for a model; num_key_value_groups = num_attention_heads / kv_heads.
  static ServerLimits petals_defaults(std::uint32_t num_key_value_groups = 1);
  Status validate() const;  // all positive, max_length >= 1 ...
};

// `0 <= max_length <= inference_max_length` (handler.py), else the error Petals raises.
Status check_max_length(const ServerLimits& l, std::int64_t max_length);
// batch × new tokens <= max_batch_size (PrioritizedTaskPool.submit_task).
Status check_task_size(const ServerLimits& l, std::uint64_t batch, std::uint64_t tokens);
// prefix + new tokens <= max_length, with Petals' message ("Maximum length exceeded: ...").
Status check_positions(std::uint64_t prefix_length, std::uint64_t new_tokens,
                       std::uint64_t max_length);
// alloc_timeout clamped to [0, max_alloc_timeout]; NaN/negative -> error.
Result<double> clamp_alloc_timeout(const ServerLimits& l, double requested);

}  // namespace kwaai::p2p::petals
