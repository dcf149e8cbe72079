// Local generation with a whole model: prefill the prompt in one step, then decode one token
// per step over the KV cache, sampling on the host.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/llama/model.hpp"
#include "engine/llama/sampling.hpp"

namespace kwaai::engine::llama {

struct GenerateOptions {
  std::int64_t max_new_tokens = 128;
  SamplingOptions sampling;
  std::vector<std::int32_t> stop_tokens;  // generation ends after emitting one of these
};

struct GenerateResult {
  std::vector<std::int32_t> ids;  // generated ids (the prompt excluded; a stop token included)
  std::int64_t prompt_tokens = 0;
  double prefill_seconds = 0;  // the prompt step (which also yields the first token)
  double decode_seconds = 0;   // every later step
  bool stopped = false;        // ended on a stop token
  // Decode throughput; 0 when fewer than two tokens were generated.
  double decode_tokens_per_s() const;
};

// on_token is called with each new id as soon as it is chosen (for streaming). Throws
// std::invalid_argument for an empty prompt, std::length_error if prompt + max_new_tokens
// exceeds the model's max_position.
GenerateResult generate(LlamaModel& model, std::span<const std::int32_t> prompt,
                        const GenerateOptions& opt,
                        const std::function<void(std::int32_t)>& on_token = {});

}  // namespace kwaai::engine::llama
