#include "engine/llama/generate.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

namespace kwaai::engine::llama {

double GenerateResult::decode_tokens_per_s() const {
  if (ids.size() < 2 || decode_seconds <= 0) return 0;
  return static_cast<double>(ids.size() - 1) / decode_seconds;
}

GenerateResult generate(LlamaModel& model, std::span<const std::int32_t> prompt,
                        const GenerateOptions& opt,
                        const std::function<void(std::int32_t)>& on_token) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty()) throw std::invalid_argument("generate: empty prompt");
  if (opt.max_new_tokens < 0) throw std::invalid_argument("generate: negative max_new_tokens");
  const ModelConfig& cfg = model.config();
  const auto n_prompt = static_cast<std::int64_t>(prompt.size());
  const std::int64_t length = n_prompt + opt.max_new_tokens;
  if (length > cfg.max_position)
    throw std::length_error("generate: prompt (" + std::to_string(n_prompt) + ") + " +
                            std::to_string(opt.max_new_tokens) +
                            " new tokens exceeds the model's context of " +
                            std::to_string(cfg.max_position));
  GenerateResult res;
  res.prompt_tokens = n_prompt;
  if (opt.max_new_tokens == 0) return res;

  Sampler sampler(opt.sampling);
  std::vector<std::int32_t> history(prompt.begin(), prompt.end());
  KvCache cache = model.make_cache(1, length);

  auto t0 = clock::now();
  std::vector<float> logits = model.forward(prompt, 1, n_prompt, cache, 0);
  std::int64_t pos = n_prompt;
  auto t1 = clock::now();
  res.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  for (;;) {
    const std::int32_t id = sampler.sample(logits, history);
    res.ids.push_back(id);
    history.push_back(id);
    if (on_token) on_token(id);
    if (std::find(opt.stop_tokens.begin(), opt.stop_tokens.end(), id) != opt.stop_tokens.end()) {
      res.stopped = true;
      break;
    }
    if (static_cast<std::int64_t>(res.ids.size()) >= opt.max_new_tokens) break;
    logits = model.forward(std::span(&id, 1), 1, 1, cache, pos);
    ++pos;
  }
  res.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return res;
}

}  // namespace kwaai::engine::llama
