// The two ends of a Llama model a Petals client runs locally while the blocks run on remote
// servers: the token embedding (input side) and the final RMSNorm + LM head (output side).
// Only those tensors are loaded; no block weights are read, so a client needs memory for the
// embedding table (and an untied head) only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/backend.hpp"
#include "engine/model/model_source.hpp"

namespace kwaai::engine::llama {

// Throws std::out_of_range naming the first id outside [0, vocab) and its index.
void check_token_ids(std::span<const std::int32_t> ids, std::int64_t vocab);

class ModelEnds {
 public:
  // Quantization applies as in LlamaModel: the table keeps its loaded dtype unless it doubles
  // as the (tied) LM head, in which case the head's quantization applies to both.
  ModelEnds(Backend& be, const ModelSource& src, Quant quant = kNoQuant);
  ModelEnds(const ModelEnds&) = delete;
  ModelEnds& operator=(const ModelEnds&) = delete;

  const ModelConfig& config() const { return cfg_; }
  Backend& backend() const { return be_; }
  bool tied() const { return lm_head_.storage() == embed_table_.storage(); }
  std::uint64_t weight_bytes() const;
  // Bytes a step reads for the output side (final norm + LM head); the embedding table is only
  // touched at the looked-up rows, unless it is the (tied) head.
  std::uint64_t head_bytes() const {
    return final_norm_.nbytes() + (final_norm_b_.defined() ? final_norm_b_.nbytes() : 0) +
           lm_head_.nbytes();
  }

  // ids -> f32[T, hidden]. Ids outside [0, vocab) throw std::out_of_range before anything runs.
  std::vector<float> embed(std::span<const std::int32_t> ids);
  // hidden f32[rows, hidden] (the last hidden state of each sequence, after all blocks) ->
  // logits f32[rows, vocab]. Throws std::invalid_argument when the size is not rows * hidden.
  std::vector<float> logits(std::span<const float> hidden, std::int64_t rows);

  // For LlamaModel, which records the ends around its blocks in one submission.
  const Tensor& embed_table() const { return embed_table_; }
  const Tensor& final_norm() const { return final_norm_; }
  // y = the final norm of x (RMSNorm, or Falcon's LayerNorm ln_f), recorded on the backend.
  void record_final_norm(const Tensor& x, const Tensor& y) const;
  // out f32[T, hidden] = the embedding rows of ids i32[T] and, for Bloom, its
  // word_embeddings_layernorm (through scratch, same shape as out): what block 0 receives.
  void record_embed(const Tensor& ids, const Tensor& out, const Tensor& scratch) const;
  bool embed_needs_scratch() const { return embed_norm_.defined(); }
  const Tensor& lm_head() const { return lm_head_; }

 private:
  Backend& be_;
  ModelConfig cfg_;
  Tensor embed_table_, final_norm_, final_norm_b_, lm_head_;  // final_norm_b_: Falcon, Bloom
  Tensor embed_norm_, embed_norm_b_;                          // Bloom
  Tensor x_, normed_, out_;  // reused between calls of the same row count; guarded by the lock
};

}  // namespace kwaai::engine::llama
