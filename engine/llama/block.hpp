// One Llama decoder layer expressed only in Backend ops, so the same code runs on the CPU
// and on Vulkan. Recording a block never downloads or flushes: on Vulkan a whole span step
// stays one command buffer.
#pragma once

#include <cstdint>
#include <span>

#include "engine/core/backend.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/model/model_source.hpp"

namespace kwaai::engine::llama {

// Device-resident weights of one block (uploaded once).
struct DeviceBlock {
  Tensor input_norm, post_norm;  // f32[hidden]
  Tensor wq, wk, wv, wo;         // [q_dim, hidden], [kv_dim, hidden] x2, [hidden, q_dim]
  Tensor w_gate, w_up, w_down;   // [inter, hidden] x2, [hidden, inter]
  std::uint64_t bytes() const;   // device bytes of the matrices and norms
};

// Reads block `layer` through engine/model (which checks every shape against the config) and
// uploads it, quantizing matrices on the way when `quant` asks for it.
DeviceBlock upload_block(Backend& be, const ModelSource& src, std::int64_t layer, Quant quant);

// Activations a step needs, as views of M rows (all segments together) into storage kept at
// the largest M seen.
struct BlockScratch {
  std::int64_t rows = 0, capacity = 0;
  Tensor normed, q, k, v, attn, act;
  void ensure(Backend& be, const ModelConfig& cfg, std::int64_t m);

 private:
  Tensor all_normed, all_q, all_k, all_v, all_attn, all_act;
};

// One sequence group inside a block step: `batch` rows of `tokens` new tokens each, at cache
// positions n_past.., against this block's cache k_cache/v_cache f32[batch, L, kv_heads,
// head_dim]. Segments occupy consecutive row ranges of x, in order.
struct BlockSegment {
  std::int64_t batch = 0, tokens = 0, n_past = 0;
  Tensor k_cache, v_cache;
};

// Records one block on x (f32[M, hidden], M = sum of batch * tokens over the segments, updated
// in place). Norms, projections and the MLP run once over all M rows, so the block's weights are
// read once for every segment; RoPE takes its per-row positions from positions i32[M]; only the
// cache write and attention run per segment, on row views of the shared activations.
void record_block(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  const Tensor& positions, std::span<const BlockSegment> segments, BlockScratch& s);

// The single-sequence-group case: x f32[B*T, hidden]; the T new tokens take positions n_past..;
// positions is i32[B*T] (each batch row repeats n_past .. n_past+T-1).
void record_block(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  std::int64_t batch, std::int64_t tokens, const Tensor& positions,
                  const Tensor& k_cache, const Tensor& v_cache, std::int64_t n_past,
                  BlockScratch& s);

}  // namespace kwaai::engine::llama
