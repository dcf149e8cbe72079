#include "engine/llama/model.hpp"

#include <string>

#include "engine/llama/weights.hpp"

namespace kwaai::engine::llama {

LlamaModel::LlamaModel(Backend& be, const ModelSource& src, Quant quant) {
  exec_ = std::make_unique<SpanExecutor>(be, src, 0, src.config().layers, quant);
  const ModelConfig& cfg = config();
  const bool tied = cfg.tied_embeddings || !src.has(kLmHeadName);
  // The table is read one row per token, so it keeps its loaded dtype unless it doubles as
  // the LM head (then the head's quantization applies to both).
  HostTensor table = src.load(kEmbedName);
  expect_shape(table, {cfg.vocab, cfg.hidden});
  embed_table_ = upload_matrix(be, table, tied ? quant : Quant::None);
  final_norm_ = upload_f32(be, load_final_norm(src));
  if (tied) {
    lm_head_ = embed_table_;
  } else {
    HostTensor head = src.load(kLmHeadName);
    expect_shape(head, {cfg.vocab, cfg.hidden});
    lm_head_ = upload_matrix(be, head, quant);
  }
}

std::uint64_t LlamaModel::weight_bytes() const {
  std::uint64_t n = exec_->weight_bytes() + embed_table_.nbytes() + final_norm_.nbytes();
  if (lm_head_.storage() != embed_table_.storage()) n += lm_head_.nbytes();
  return n;
}

namespace {
void check_ids(std::span<const std::int32_t> ids, std::int64_t vocab) {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw std::out_of_range("token id " + std::to_string(ids[i]) + " at index " +
                              std::to_string(i) + " outside the vocabulary [0, " +
                              std::to_string(vocab) + ")");
}
}  // namespace

std::vector<float> LlamaModel::embed(std::span<const std::int32_t> ids) {
  const ModelConfig& cfg = config();
  check_ids(ids, cfg.vocab);
  const auto t = static_cast<std::int64_t>(ids.size());
  if (t == 0) return {};
  Backend& be = backend();
  std::lock_guard lock(device_mutex(be));
  Tensor d_ids = be.alloc(DType::I32, {t});
  Tensor out = be.alloc(DType::F32, {t, cfg.hidden});
  be.upload(d_ids, std::as_bytes(ids));
  be.embedding(d_ids, embed_table_, out);
  std::vector<float> host(static_cast<std::size_t>(t * cfg.hidden));
  be.download(out, std::as_writable_bytes(std::span(host)));
  return host;
}

std::vector<float> LlamaModel::forward(std::span<const std::int32_t> ids, std::int64_t batch,
                                       std::int64_t tokens, KvCache& cache, std::int64_t n_past) {
  const ModelConfig& cfg = config();
  const std::int64_t m = batch * tokens, h = cfg.hidden;
  if (batch <= 0 || tokens <= 0 || static_cast<std::int64_t>(ids.size()) != m)
    throw std::invalid_argument("LlamaModel::forward: " + std::to_string(ids.size()) +
                                " ids for [" + std::to_string(batch) + ", " +
                                std::to_string(tokens) + "]");
  check_ids(ids, cfg.vocab);
  Backend& be = backend();
  std::lock_guard lock(device_mutex(be));
  if (!x_.defined() || x_.dim(0) != m) {
    ids_ = be.alloc(DType::I32, {m});
    x_ = be.alloc(DType::F32, {m, h});
  }
  if (!last_.defined() || last_.dim(0) != batch) {
    last_ = be.alloc(DType::F32, {batch, h});
    normed_ = be.alloc(DType::F32, {batch, h});
    logits_ = be.alloc(DType::F32, {batch, cfg.vocab});
  }
  be.upload(ids_, std::as_bytes(ids));
  be.embedding(ids_, embed_table_, x_);
  exec_->record(x_, batch, tokens, cache, n_past);
  // Only each row's last token needs logits: gather those rows, then norm and project.
  for (std::int64_t b = 0; b < batch; ++b)
    be.copy(x_.slice_rows(b * tokens + tokens - 1, b * tokens + tokens),
            last_.slice_rows(b, b + 1));
  be.rms_norm(last_, final_norm_, normed_, cfg.rms_eps);
  be.matmul(normed_, lm_head_, logits_);
  std::vector<float> out(static_cast<std::size_t>(batch * cfg.vocab));
  be.download(logits_, std::as_writable_bytes(std::span(out)));
  return out;
}

}  // namespace kwaai::engine::llama
