#include "engine/llama/model_ends.hpp"

#include <mutex>
#include <stdexcept>
#include <string>

#include "engine/llama/span_executor.hpp"
#include "engine/llama/weights.hpp"

namespace kwaai::engine::llama {

void check_token_ids(std::span<const std::int32_t> ids, std::int64_t vocab) {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw std::out_of_range("token id " + std::to_string(ids[i]) + " at index " +
                              std::to_string(i) + " outside the vocabulary [0, " +
                              std::to_string(vocab) + ")");
}

ModelEnds::ModelEnds(Backend& be, const ModelSource& src, Quant quant)
    : be_(be), cfg_(src.config()) {
  // The table is read one row per token, so it keeps its loaded dtype unless it doubles as
  // the LM head (then the head's quantization applies to both).
  const bool tied = cfg_.tied_embeddings || !src.has(kLmHeadName);
  HostTensor table = src.load(embed_tensor_name(cfg_));
  expect_shape(table, {cfg_.vocab, cfg_.hidden});
  embed_table_ = upload_matrix(be, table, tied ? quant : kNoQuant);
  final_norm_ = upload_f32(be, load_final_norm(src));
  if (cfg_.is_falcon() || cfg_.is_bloom())
    final_norm_b_ = upload_f32(be, load_final_norm_bias(src));
  if (cfg_.is_bloom()) {
    HostTensor w = src.load(kBloomEmbedNormName, DType::F32),
               b = src.load(kBloomEmbedNormBiasName, DType::F32);
    expect_shape(w, {cfg_.hidden});
    expect_shape(b, {cfg_.hidden});
    embed_norm_ = upload_f32(be, w);
    embed_norm_b_ = upload_f32(be, b);
  }
  if (tied) {
    lm_head_ = embed_table_;
  } else {
    HostTensor head = src.load(kLmHeadName);
    expect_shape(head, {cfg_.vocab, cfg_.hidden});
    lm_head_ = upload_matrix(be, head, quant);
  }
}

void ModelEnds::record_embed(const Tensor& ids, const Tensor& out, const Tensor& scratch) const {
  if (!embed_norm_.defined()) {
    be_.embedding(ids, embed_table_, out);
    return;
  }
  be_.embedding(ids, embed_table_, scratch);
  be_.layer_norm(scratch, embed_norm_, embed_norm_b_, out, cfg_.rms_eps);
}

void ModelEnds::record_final_norm(const Tensor& x, const Tensor& y) const {
  if (final_norm_b_.defined()) {
    be_.layer_norm(x, final_norm_, final_norm_b_, y, cfg_.rms_eps);  // Falcon's ln_f
  } else {
    be_.rms_norm(x, final_norm_, y, cfg_.rms_eps);
  }
}

std::uint64_t ModelEnds::weight_bytes() const {
  std::uint64_t n = embed_table_.nbytes() + final_norm_.nbytes();
  if (final_norm_b_.defined()) n += final_norm_b_.nbytes();
  if (embed_norm_.defined()) n += embed_norm_.nbytes() + embed_norm_b_.nbytes();
  if (!tied()) n += lm_head_.nbytes();
  return n;
}

std::vector<float> ModelEnds::embed(std::span<const std::int32_t> ids) {
  check_token_ids(ids, cfg_.vocab);
  const auto t = static_cast<std::int64_t>(ids.size());
  if (t == 0) return {};
  std::lock_guard lock(device_mutex(be_));
  Tensor d_ids = be_.alloc(DType::I32, {t});
  Tensor out = be_.alloc(DType::F32, {t, cfg_.hidden});
  be_.upload(d_ids, std::as_bytes(ids));
  record_embed(d_ids, out,
               embed_needs_scratch() ? be_.alloc(DType::F32, {t, cfg_.hidden}) : Tensor{});
  std::vector<float> host(static_cast<std::size_t>(t * cfg_.hidden));
  be_.download(out, std::as_writable_bytes(std::span(host)));
  return host;
}

std::vector<float> ModelEnds::logits(std::span<const float> hidden, std::int64_t rows) {
  if (rows <= 0 || static_cast<std::int64_t>(hidden.size()) != rows * cfg_.hidden)
    throw std::invalid_argument("ModelEnds::logits: " + std::to_string(hidden.size()) +
                                " floats for [" + std::to_string(rows) + ", " +
                                std::to_string(cfg_.hidden) + "]");
  std::lock_guard lock(device_mutex(be_));
  if (!x_.defined() || x_.dim(0) != rows) {
    x_ = be_.alloc(DType::F32, {rows, cfg_.hidden});
    normed_ = be_.alloc(DType::F32, {rows, cfg_.hidden});
    out_ = be_.alloc(DType::F32, {rows, cfg_.vocab});
  }
  be_.upload(x_, std::as_bytes(hidden));
  record_final_norm(x_, normed_);
  be_.matmul(normed_, lm_head_, out_);
  std::vector<float> host(static_cast<std::size_t>(rows * cfg_.vocab));
  be_.download(out_, std::as_writable_bytes(std::span(host)));
  return host;
}

}  // namespace kwaai::engine::llama
