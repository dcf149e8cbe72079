#include "engine/llama/model.hpp"

#include <string>

#include "engine/llama/weights.hpp"

namespace kwaai::engine::llama {

LlamaModel::LlamaModel(Backend& be, const ModelSource& src, Quant quant)
    : exec_(std::make_unique<SpanExecutor>(be, src, 0, src.config().layers, quant)),
      ends_(be, src, quant) {}

std::uint64_t LlamaModel::weight_bytes() const {
  return exec_->weight_bytes() + ends_.weight_bytes();
}

std::vector<float> LlamaModel::embed(std::span<const std::int32_t> ids) {
  return ends_.embed(ids);
}

std::vector<float> LlamaModel::forward(std::span<const std::int32_t> ids, std::int64_t batch,
                                       std::int64_t tokens, KvCache& cache, std::int64_t n_past) {
  const ModelConfig& cfg = config();
  const std::int64_t m = batch * tokens, h = cfg.hidden;
  if (batch <= 0 || tokens <= 0 || static_cast<std::int64_t>(ids.size()) != m)
    throw std::invalid_argument("LlamaModel::forward: " + std::to_string(ids.size()) +
                                " ids for [" + std::to_string(batch) + ", " +
                                std::to_string(tokens) + "]");
  check_token_ids(ids, cfg.vocab);
  Backend& be = backend();
  std::lock_guard lock(device_mutex(be));
  if (!x_.defined() || x_.dim(0) != m) {
    ids_ = be.alloc(DType::I32, {m});
    x_ = be.alloc(DType::F32, {m, h});
    if (ends_.embed_needs_scratch()) emb_ = be.alloc(DType::F32, {m, h});
  }
  if (!last_.defined() || last_.dim(0) != batch) {
    last_ = be.alloc(DType::F32, {batch, h});
    normed_ = be.alloc(DType::F32, {batch, h});
    logits_ = be.alloc(DType::F32, {batch, cfg.vocab});
  }
  be.upload(ids_, std::as_bytes(ids));
  ends_.record_embed(ids_, x_, emb_);
  exec_->record(x_, batch, tokens, cache, n_past);
  // Only each row's last token needs logits: gather those rows, then norm and project.
  for (std::int64_t b = 0; b < batch; ++b)
    be.copy(x_.slice_rows(b * tokens + tokens - 1, b * tokens + tokens),
            last_.slice_rows(b, b + 1));
  ends_.record_final_norm(last_, normed_);
  be.matmul(normed_, ends_.lm_head(), logits_);
  std::vector<float> out(static_cast<std::size_t>(batch * cfg.vocab));
  be.download(logits_, std::as_writable_bytes(std::span(out)));
  return out;
}

}  // namespace kwaai::engine::llama
