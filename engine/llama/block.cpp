#include "engine/llama/block.hpp"

#include <cmath>
#include <string>

#include "engine/llama/weights.hpp"

namespace kwaai::engine::llama {

std::uint64_t DeviceBlock::bytes() const {
  std::uint64_t n = 0;
  for (const Tensor* t : {&input_norm, &post_norm, &wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down})
    n += t->nbytes();
  return n;
}

DeviceBlock upload_block(Backend& be, const ModelSource& src, std::int64_t layer, Quant quant) {
  // Tensor by tensor: each is quantized by the source as it is read (rows through f32, on every
  // hardware thread, the file's pages dropped after) and uploaded before the next is read, so
  // the host holds one converted tensor at a time rather than the whole block as stored (a 70B
  // block is 1.7 GB of bf16). Rows that are not whole blocks of the target keep what
  // load_block_tensor gives them (engine/model).
  auto mat = [&](BlockTensor t) {
    return upload_matrix(be, load_block_tensor(src, layer, t, quant), quant);
  };
  DeviceBlock w;
  w.input_norm = upload_f32(be, load_block_tensor(src, layer, BlockTensor::InputNorm, kNoQuant));
  w.post_norm = upload_f32(be, load_block_tensor(src, layer, BlockTensor::PostNorm, kNoQuant));
  w.wq = mat(BlockTensor::Q);
  w.wk = mat(BlockTensor::K);
  w.wv = mat(BlockTensor::V);
  w.wo = mat(BlockTensor::O);
  w.w_gate = mat(BlockTensor::Gate);
  w.w_up = mat(BlockTensor::Up);
  w.w_down = mat(BlockTensor::Down);
  return w;
}

void BlockScratch::ensure(Backend& be, const ModelConfig& cfg, std::int64_t m) {
  if (rows == m) return;
  const std::int64_t h = cfg.hidden, i = cfg.intermediate;
  // Storage grows to the largest step seen and is kept: decode (1 row) and prefill (hundreds)
  // alternate in a server, and reallocating on every change paid an allocation and the first
  // touch of every page (tens of MB at 8B shapes) each time. Smaller steps use row views.
  if (m > capacity) {
    all_normed = be.alloc(DType::F32, {m, h});
    all_q = be.alloc(DType::F32, {m, q_dim(cfg)});
    all_k = be.alloc(DType::F32, {m, kv_dim(cfg)});
    all_v = be.alloc(DType::F32, {m, kv_dim(cfg)});
    all_attn = be.alloc(DType::F32, {m, q_dim(cfg)});
    all_act = be.alloc(DType::F32, {m, i});
    capacity = m;
  }
  normed = all_normed.slice_rows(0, m);
  q = all_q.slice_rows(0, m);
  k = all_k.slice_rows(0, m);
  v = all_v.slice_rows(0, m);
  attn = all_attn.slice_rows(0, m);
  act = all_act.slice_rows(0, m);
  rows = m;
}

void record_block(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  const Tensor& positions, std::span<const BlockSegment> segments,
                  BlockScratch& s) {
  const std::int64_t hq = cfg.heads, hkv = cfg.kv_heads, d = cfg.head_dim;
  std::int64_t m = 0;
  for (const BlockSegment& g : segments) m += g.batch * g.tokens;
  if (segments.empty() || m <= 0 || x.dim(0) != m)
    throw std::invalid_argument("record_block: " + std::to_string(segments.size()) +
                                " segments with " + std::to_string(m) + " rows for x " +
                                x.describe());
  s.ensure(be, cfg, m);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  // Attention half: x += o_proj(attention(rope(q), rope(k) -> cache, v -> cache)). The fused
  // ops (one pass for Q/K/V, the residual add inside the product) are what the unfused
  // sequence computes; backends use them to save passes over memory and fork/joins.
  be.rms_norm(x, w.input_norm, s.normed, cfg.rms_eps);
  const Tensor* qkv_w[] = {&w.wq, &w.wk, &w.wv};
  const Tensor* qkv_y[] = {&s.q, &s.k, &s.v};
  be.matmul_many(s.normed, qkv_w, qkv_y);
  // Each segment attends only to its own cache: row views of q/k/v/attn and of the positions
  // select its rows (whole-tensor views when there is a single segment). rope_kv_write rotates
  // q and k and writes k and v into the cache in one op.
  std::int64_t row = 0;
  for (const BlockSegment& g : segments) {
    const std::int64_t rows = g.batch * g.tokens;
    auto part = [&](const Tensor& t, std::int64_t heads) {
      return t.slice_rows(row, row + rows).reshaped({g.batch, g.tokens, heads, d});
    };
    be.rope_kv_write(part(s.q, hq), part(s.k, hkv), part(s.v, hkv),
                     positions.slice_rows(row, row + rows), cfg.rope, g.k_cache, g.v_cache,
                     g.n_past);
    be.attention(part(s.q, hq), g.k_cache, g.v_cache, part(s.attn, hq), g.n_past, scale,
                 cfg.sliding_window);
    row += rows;
  }
  be.matmul_add(s.attn, w.wo, x);

  // MLP half: x += down(silu(gate(n)) * up(n)), n = RMSNorm(x).
  be.rms_norm(x, w.post_norm, s.normed, cfg.rms_eps);
  be.matmul_silu_mul(s.normed, w.w_gate, w.w_up, s.act);
  be.matmul_add(s.act, w.w_down, x);
}

void record_block(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  std::int64_t batch, std::int64_t tokens, const Tensor& positions,
                  const Tensor& k_cache, const Tensor& v_cache, std::int64_t n_past,
                  BlockScratch& s) {
  const BlockSegment one{batch, tokens, n_past, k_cache, v_cache};
  record_block(be, cfg, w, x, positions, std::span(&one, 1), s);
}

}  // namespace kwaai::engine::llama
