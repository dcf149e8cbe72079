// A whole Llama model on one backend: token embedding, all blocks through a SpanExecutor,
// final RMSNorm and the LM head (tied to the embedding table when the config says so).
// One step is one upload of token ids, one submission and one download of the logits.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/llama/model_ends.hpp"
#include "engine/llama/span_executor.hpp"

namespace kwaai::engine::llama {

class LlamaModel {
 public:
  LlamaModel(Backend& be, const ModelSource& src, Quant quant = kNoQuant);

  const ModelConfig& config() const { return exec_->config(); }
  Backend& backend() const { return exec_->backend(); }
  SpanExecutor& blocks() { return *exec_; }
  std::uint64_t weight_bytes() const;
  // Weight bytes one decode step of one token reads: every block (a MoE block's router and
  // experts_per_token of its experts), the final norm and the LM head.
  std::uint64_t step_weight_bytes() const {
    return exec_->active_weight_bytes() + ends_.head_bytes();
  }

  KvCache make_cache(std::int64_t batch, std::int64_t max_length) const {
    return exec_->make_cache(batch, max_length);
  }
  // ids i32[B, T] at positions n_past..; returns the logits of each row's last token,
  // f32[B, vocab]. Ids outside [0, vocab) throw std::out_of_range before anything runs.
  std::vector<float> forward(std::span<const std::int32_t> ids, std::int64_t batch,
                             std::int64_t tokens, KvCache& cache, std::int64_t n_past);
  // The token embeddings f32[T, hidden] (for tests and for clients that run blocks remotely).
  std::vector<float> embed(std::span<const std::int32_t> ids);

 private:
  std::unique_ptr<SpanExecutor> exec_;
  ModelEnds ends_;                                 // embedding, final norm, LM head
  Tensor ids_, x_, emb_, last_, normed_, logits_;  // guarded by the device lock (emb_: Bloom)
};

}  // namespace kwaai::engine::llama
