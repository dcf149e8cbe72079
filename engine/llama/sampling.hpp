// Choosing the next token from logits, on the host (logits are one row of vocab floats).
//
// Order of operations (as in HF transformers' logits processors): repetition penalty over the
// tokens seen so far, temperature, top-k, top-p (nucleus), then a draw. temperature == 0 is
// greedy (argmax, ties to the lowest id). The generator is our own xoshiro256** seeded by
// splitmix64 and the draw uses 53 random bits, so a seed gives the same ids on every platform
// and standard library.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kwaai::engine::llama {

struct SamplingOptions {
  float temperature = 0.0f;         // 0: greedy
  std::int64_t top_k = 0;           // 0: off
  float top_p = 1.0f;               // 1: off
  float repetition_penalty = 1.0f;  // 1: off; > 1 discourages repeats
  std::uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opt);  // throws std::invalid_argument on bad values
  // history: prompt and generated ids (for the repetition penalty).
  std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history);
  double uniform();  // [0, 1)

 private:
  std::uint64_t next();
  SamplingOptions opt_;
  std::uint64_t s_[4];
  std::vector<float> work_;
  std::vector<std::int32_t> order_;
};

std::int32_t argmax(std::span<const float> logits);

}  // namespace kwaai::engine::llama
