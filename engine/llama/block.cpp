#include "engine/llama/block.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/llama/weights.hpp"

namespace kwaai::engine::llama {

namespace {
std::uint64_t expert_bytes(const DeviceExpert& e) {
  return e.gate.nbytes() + e.up.nbytes() + e.down.nbytes();
}
}  // namespace

std::uint64_t DeviceBlock::bytes() const {
  std::uint64_t n = 0;
  for (const Tensor* t : {&input_norm, &post_norm, &input_norm_b, &post_norm_b, &wq, &wk, &wv, &wo,
                          &w_gate, &w_up, &w_down, &router, &bq, &bk, &bv, &bo, &b_up, &b_down})
    if (t->defined()) n += t->nbytes();
  for (const DeviceExpert& e : experts) n += expert_bytes(e);
  return n;
}

std::uint64_t DeviceBlock::active_bytes(const ModelConfig& cfg) const {
  if (experts.empty()) return bytes();
  std::uint64_t all = 0;
  for (const DeviceExpert& e : experts) all += expert_bytes(e);
  const auto per_expert = all / experts.size();
  return bytes() - all + per_expert * static_cast<std::uint64_t>(cfg.experts_per_token);
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
  const ModelConfig& cfg = src.config();
  auto vec = [&](BlockTensor t) {
    return block_has_tensor(cfg, t) ? upload_f32(be, load_block_tensor(src, layer, t, kNoQuant))
                                    : Tensor{};
  };
  DeviceBlock w;
  w.input_norm = vec(BlockTensor::InputNorm);
  w.input_norm_b = vec(BlockTensor::InputNormBias);
  w.post_norm = vec(BlockTensor::PostNorm);
  w.post_norm_b = vec(BlockTensor::PostNormBias);
  {
    // Falcon's fused query_key_value is read once and split (engine/model).
    auto qkv = load_block_qkv(src, layer, quant);
    w.wq = upload_matrix(be, qkv[0], quant);
    w.wk = upload_matrix(be, qkv[1], quant);
    w.wv = upload_matrix(be, qkv[2], quant);
  }
  w.wo = mat(BlockTensor::O);
  if (cfg.is_bloom()) {
    auto b = load_block_qkv_bias(src, layer);
    w.bq = upload_f32(be, b[0]);
    w.bk = upload_f32(be, b[1]);
    w.bv = upload_f32(be, b[2]);
    w.bo = vec(BlockTensor::OBias);
    w.b_up = vec(BlockTensor::UpBias);
    w.b_down = vec(BlockTensor::DownBias);
  }
  if (cfg.is_falcon() || cfg.is_bloom()) {
    w.w_up = mat(BlockTensor::Up);
    w.w_down = mat(BlockTensor::Down);
    return w;
  }
  if (cfg.experts == 0) {
    w.w_gate = mat(BlockTensor::Gate);
    w.w_up = mat(BlockTensor::Up);
    w.w_down = mat(BlockTensor::Down);
    return w;
  }
  // The router stays as stored (load_block_tensor does not quantize it).
  w.router = upload_matrix(be, load_block_tensor(src, layer, BlockTensor::Router, quant), kNoQuant);
  w.experts.resize(static_cast<std::size_t>(cfg.experts));
  for (std::int64_t e = 0; e < cfg.experts; ++e) {
    auto ex = [&](BlockTensor t) {
      return upload_matrix(be, load_expert_tensor(src, layer, e, t, quant), quant);
    };
    DeviceExpert& d = w.experts[static_cast<std::size_t>(e)];
    d.gate = ex(BlockTensor::Gate);
    d.up = ex(BlockTensor::Up);
    d.down = ex(BlockTensor::Down);
  }
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
    if (cfg.is_falcon()) all_normed_mlp = be.alloc(DType::F32, {m, h});
    if (cfg.experts > 0) {
      const std::int64_t e = cfg.experts, k = cfg.experts_per_token;
      all_logits = be.alloc(DType::F32, {m, e});
      all_route_ids = be.alloc(DType::I32, {m, k});
      all_route_w = be.alloc(DType::F32, {m, k});
      all_pair_row = be.alloc(DType::I32, {m * k});
      all_pair_w = be.alloc(DType::F32, {m * k});
      all_pair_x = be.alloc(DType::F32, {m * k, h});
      all_pair_act = be.alloc(DType::F32, {m * k, i});
      all_pair_y = be.alloc(DType::F32, {m * k, h});
    }
    capacity = m;
  }
  normed = all_normed.slice_rows(0, m);
  q = all_q.slice_rows(0, m);
  k = all_k.slice_rows(0, m);
  v = all_v.slice_rows(0, m);
  attn = all_attn.slice_rows(0, m);
  act = all_act.slice_rows(0, m);
  if (cfg.is_falcon()) normed_mlp = all_normed_mlp.slice_rows(0, m);
  if (cfg.experts > 0) {
    const std::int64_t k = cfg.experts_per_token;
    logits = all_logits.slice_rows(0, m);
    route_ids = all_route_ids.slice_rows(0, m);
    route_w = all_route_w.slice_rows(0, m);
    pair_row = all_pair_row.slice_rows(0, m * k);
    pair_w = all_pair_w.slice_rows(0, m * k);
    pair_x = all_pair_x.slice_rows(0, m * k);
    pair_act = all_pair_act.slice_rows(0, m * k);
    pair_y = all_pair_y.slice_rows(0, m * k);
  }
  rows = m;
}

namespace {

// x += sum over the k experts routed to each row of weight * expert(normed row) (Mixtral's
// block_sparse_moe). The route is read back and regrouped by expert on the host, so each
// expert runs one gather, one fused gate/up product, one down product and one weighted
// scatter-add over just its rows, and experts no row chose are not touched at all.
void record_moe(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                BlockScratch& s) {
  const std::int64_t m = s.rows, k = cfg.experts_per_token, n_exp = cfg.experts;
  const auto pairs = static_cast<std::size_t>(m * k);
  be.matmul(s.normed, w.router, s.logits);
  be.moe_route(s.logits, k, s.route_ids, s.route_w);
  s.host_ids.resize(pairs);
  s.host_w.resize(pairs);
  be.download(s.route_ids, std::as_writable_bytes(std::span(s.host_ids)));
  be.download(s.route_w, std::as_writable_bytes(std::span(s.host_w)));
  // Counting sort of the (row, slot) pairs by expert; rows stay ascending within an expert.
  std::vector<std::int64_t>& start = s.host_start;  // kept in the scratch: no allocation per step
  start.assign(static_cast<std::size_t>(n_exp) + 1, 0);
  for (std::int32_t e : s.host_ids) {
    if (e < 0 || e >= n_exp)
      throw std::runtime_error("moe: router picked expert " + std::to_string(e) + " of " +
                               std::to_string(n_exp));
    ++start[static_cast<std::size_t>(e) + 1];
  }
  for (std::size_t e = 0; e < static_cast<std::size_t>(n_exp); ++e) start[e + 1] += start[e];
  s.host_pair_row.resize(pairs);
  s.host_pair_w.resize(pairs);
  std::vector<std::int64_t>& fill = s.host_fill;
  fill.assign(start.begin(), start.end() - 1);
  for (std::size_t p = 0; p < pairs; ++p) {
    const auto at = static_cast<std::size_t>(fill[static_cast<std::size_t>(s.host_ids[p])]++);
    s.host_pair_row[at] = static_cast<std::int32_t>(p / static_cast<std::size_t>(k));
    s.host_pair_w[at] = s.host_w[p];
  }
  be.upload(s.pair_row, std::as_bytes(std::span(s.host_pair_row)));
  be.upload(s.pair_w, std::as_bytes(std::span(s.host_pair_w)));
  for (std::int64_t e = 0; e < n_exp; ++e) {
    const std::int64_t b = start[static_cast<std::size_t>(e)],
                       end = start[static_cast<std::size_t>(e) + 1];
    if (b == end) continue;
    const DeviceExpert& ex = w.experts[static_cast<std::size_t>(e)];
    const Tensor rows = s.pair_row.slice_rows(b, end), xe = s.pair_x.slice_rows(b, end),
                 act = s.pair_act.slice_rows(b, end), ye = s.pair_y.slice_rows(b, end);
    be.gather_rows(s.normed, rows, xe);
    be.matmul_silu_mul(xe, ex.gate, ex.up, act);
    be.matmul(act, ex.down, ye);
    be.scatter_add_rows(ye, rows, s.pair_w.slice_rows(b, end), x);
  }
}

// q/k/v = s.normed (the input norm's output) times wq/wk/wv, then per segment RoPE, the cache
// write and attention into s.attn. Each segment attends only to its own cache: row views of
// q/k/v/attn and of the positions select its rows (whole-tensor views when there is a single
// segment). rope_kv_write rotates q and k and writes k and v into the cache in one op.
void record_attention(Backend& be, const ModelConfig& cfg, const DeviceBlock& w,
                      const Tensor& positions, std::span<const BlockSegment> segments,
                      BlockScratch& s) {
  const std::int64_t hq = cfg.heads, hkv = cfg.kv_heads, d = cfg.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const Tensor* qkv_w[] = {&w.wq, &w.wk, &w.wv};
  const Tensor* qkv_y[] = {&s.q, &s.k, &s.v};
  be.matmul_many(s.normed, qkv_w, qkv_y);
  if (w.bq.defined()) {
    be.bias_add(s.q, w.bq);
    be.bias_add(s.k, w.bk);
    be.bias_add(s.v, w.bv);
  }
  std::int64_t row = 0;
  for (const BlockSegment& g : segments) {
    const std::int64_t rows = g.batch * g.tokens;
    auto part = [&](const Tensor& t, std::int64_t heads) {
      return t.slice_rows(row, row + rows).reshaped({g.batch, g.tokens, heads, d});
    };
    if (cfg.alibi_max_bias > 0.0f) {
      // ALiBi (Bloom): no rotary; the positions enter as the attention's bias.
      be.kv_write(part(s.k, hkv), g.k_cache, g.n_past);
      be.kv_write(part(s.v, hkv), g.v_cache, g.n_past);
    } else {
      be.rope_kv_write(part(s.q, hq), part(s.k, hkv), part(s.v, hkv),
                       positions.slice_rows(row, row + rows), cfg.rope, g.k_cache, g.v_cache,
                       g.n_past);
    }
    be.attention(part(s.q, hq), g.k_cache, g.v_cache, part(s.attn, hq), g.n_past, scale,
                 cfg.sliding_window, cfg.alibi_max_bias);
    row += rows;
  }
}

// HF 4.43.2 FalconDecoderLayer (bias=False, rotary). Parallel blocks: the attention and the MLP
// both read the block's input x, through ln_attn / ln_mlp (two norms) or one shared
// input_layernorm, and x += attention + mlp; the MLP's input is taken before the attention's
// residual add lands in x. Sequential (old layout, parallel_attn=false): Llama's order with
// LayerNorms. The MLP is down(gelu(up(n))).
void record_falcon(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                   const Tensor& positions, std::span<const BlockSegment> segments,
                   BlockScratch& s) {
  const float eps = cfg.rms_eps;
  be.layer_norm(x, w.input_norm, w.input_norm_b, s.normed, eps);
  const Tensor* mlp_in = &s.normed;
  if (cfg.parallel_attn && w.post_norm.defined()) {
    be.layer_norm(x, w.post_norm, w.post_norm_b, s.normed_mlp, eps);
    mlp_in = &s.normed_mlp;
  }
  record_attention(be, cfg, w, positions, segments, s);
  if (cfg.parallel_attn) {
    be.matmul(*mlp_in, w.w_up, s.act);  // reads the norm output, so x may change after this
    be.matmul_add(s.attn, w.wo, x);
  } else {
    be.matmul_add(s.attn, w.wo, x);
    be.layer_norm(x, w.post_norm, w.post_norm_b, s.normed, eps);
    be.matmul(s.normed, w.w_up, s.act);
  }
  be.gelu(s.act, s.act, Gelu::erf);
  be.matmul_add(s.act, w.w_down, x);
}

// HF 4.43.2 BloomBlock (apply_residual_connection_post_layernorm=False): x += dense(attention(
// LN(x))) + b; x += down(gelu_tanh(up(LN(x)) + b)) + b, the attention with ALiBi and biased
// Q/K/V (record_attention).
void record_bloom(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  const Tensor& positions, std::span<const BlockSegment> segments,
                  BlockScratch& s) {
  const float eps = cfg.rms_eps;
  be.layer_norm(x, w.input_norm, w.input_norm_b, s.normed, eps);
  record_attention(be, cfg, w, positions, segments, s);
  be.matmul_add(s.attn, w.wo, x);
  be.bias_add(x, w.bo);
  be.layer_norm(x, w.post_norm, w.post_norm_b, s.normed, eps);
  be.matmul(s.normed, w.w_up, s.act);
  be.bias_add(s.act, w.b_up);
  be.gelu(s.act, s.act, Gelu::tanh);
  be.matmul_add(s.act, w.w_down, x);
  be.bias_add(x, w.b_down);
}

}  // namespace

void record_block(Backend& be, const ModelConfig& cfg, const DeviceBlock& w, const Tensor& x,
                  const Tensor& positions, std::span<const BlockSegment> segments,
                  BlockScratch& s) {
  std::int64_t m = 0;
  for (const BlockSegment& g : segments) m += g.batch * g.tokens;
  if (segments.empty() || m <= 0 || x.dim(0) != m)
    throw std::invalid_argument("record_block: " + std::to_string(segments.size()) +
                                " segments with " + std::to_string(m) + " rows for x " +
                                x.describe());
  s.ensure(be, cfg, m);
  if (cfg.is_falcon()) {
    record_falcon(be, cfg, w, x, positions, segments, s);
    return;
  }
  if (cfg.is_bloom()) {
    record_bloom(be, cfg, w, x, positions, segments, s);
    return;
  }

  // Attention half: x += o_proj(attention(rope(q), rope(k) -> cache, v -> cache)). The fused
  // ops (one pass for Q/K/V, the residual add inside the product) are what the unfused
  // sequence computes; backends use them to save passes over memory and fork/joins.
  be.rms_norm(x, w.input_norm, s.normed, cfg.rms_eps);
  record_attention(be, cfg, w, positions, segments, s);
  be.matmul_add(s.attn, w.wo, x);

  // MLP half: x += down(silu(gate(n)) * up(n)), n = RMSNorm(x).
  be.rms_norm(x, w.post_norm, s.normed, cfg.rms_eps);
  if (!w.experts.empty()) {
    record_moe(be, cfg, w, x, s);
    return;
  }
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
