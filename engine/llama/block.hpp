// One Llama decoder layer expressed only in Backend ops, so the same code runs on the CPU
// and on Vulkan. Recording a block never downloads or flushes: on Vulkan a whole span step
// stays one command buffer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/backend.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/model/model_source.hpp"

namespace kwaai::engine::llama {

// One SwiGLU expert of a MoE block (Mixtral's w1 / w3 / w2).
struct DeviceExpert {
  Tensor gate, up, down;  // [inter, hidden] x2, [hidden, inter]
};

// Device-resident weights of one block (uploaded once).
struct DeviceBlock {
  Tensor input_norm, post_norm;         // f32[hidden] (Falcon: post_norm where the block has one)
  Tensor input_norm_b, post_norm_b;     // Falcon's and Bloom's LayerNorm biases, f32[hidden]
  Tensor bq, bk, bv, bo, b_up, b_down;  // Bloom's linear biases, f32[out_features]
  Tensor wq, wk, wv, wo;                // [q_dim, hidden], [kv_dim, hidden] x2, [hidden, q_dim]
  Tensor w_gate, w_up, w_down;  // dense MLP: [inter, hidden] x2, [hidden, inter]; no gate: Falcon
  // MoE MLP instead (cfg.experts > 0): the router [experts, hidden] as stored, and the experts.
  Tensor router;
  std::vector<DeviceExpert> experts;
  std::uint64_t bytes() const;  // device bytes of the matrices and norms
  // Bytes one token's step reads: a MoE block's router plus experts_per_token of its experts
  // (a dense block: bytes()).
  std::uint64_t active_bytes(const ModelConfig& cfg) const;
};

// Reads block `layer` through engine/model (which checks every shape against the config) and
// uploads it, quantizing matrices on the way when `quant` asks for it.
DeviceBlock upload_block(Backend& be, const ModelSource& src, std::int64_t layer, Quant quant);

// Activations a step needs, as views of M rows (all segments together) into storage kept at
// the largest M seen.
struct BlockScratch {
  std::int64_t rows = 0, capacity = 0;
  Tensor normed, q, k, v, attn, act;
  Tensor normed_mlp;  // Falcon: the MLP's own norm output when a parallel block has two
  // MoE (cfg.experts > 0): router logits [M, E], the route ids / weights [M, k], and per routed
  // (row, expert) pair, grouped by expert: the row index and weight [M*k], the gathered rows
  // [M*k, hidden], the experts' activations [M*k, inter] and outputs [M*k, hidden].
  Tensor logits, route_ids, route_w, pair_row, pair_w, pair_x, pair_act, pair_y;
  std::vector<std::int32_t> host_ids, host_pair_row;  // the route read back, regrouped
  std::vector<float> host_w, host_pair_w;
  std::vector<std::int64_t> host_start, host_fill;  // per expert: its first pair, next slot
  void ensure(Backend& be, const ModelConfig& cfg, std::int64_t m);

 private:
  Tensor all_normed, all_q, all_k, all_v, all_attn, all_act, all_normed_mlp;
  Tensor all_logits, all_route_ids, all_route_w, all_pair_row, all_pair_w, all_pair_x, all_pair_act,
      all_pair_y;
};

// One sequence group inside a block step: `batch` rows of `tokens` new tokens each, at cache
// positions n_past.., against this block's cache k_cache/v_cache f32[batch, L, kv_heads,
// head_dim]. Segments occupy consecutive row ranges of x, in order.
struct BlockSegment {
  std::int64_t batch = 0, tokens = 0, n_past = 0;
  Tensor k_cache, v_cache;
};

// Records one block on x (f32[M, hidden], M = sum of batch * tokens over the segments, updated
// in place). A MoE block reads the route back to the host in the middle of the MLP (one
// download of M*k ids and weights, which on Vulkan submits what is recorded so far) to size
// each expert's matmul to the rows routed to it: only the chosen experts' weights are read. Norms,
// projections and the MLP run once over all M rows, so the block's weights are read once for every
// segment; RoPE takes its per-row positions from positions i32[M]; only the cache write and
// attention run per segment, on row views of the shared activations.
void record_block(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  const Tensor& positions, std::span<const BlockSegment> segments, BlockScratch& s);

// The single-sequence-group case: x f32[B*T, hidden]; the T new tokens take positions n_past..;
// positions is i32[B*T] (each batch row repeats n_past .. n_past+T-1).
void record_block(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  std::int64_t batch, std::int64_t tokens, const Tensor& positions,
                  const Tensor& k_cache, const Tensor& v_cache, std::int64_t n_past,
                  BlockScratch& s);

}  // namespace kwaai::engine::llama
