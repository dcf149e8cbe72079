#include "engine/llama/span_executor.hpp"

#include <map>
#include <memory>
#include <string>

namespace kwaai::engine::llama {

std::mutex& device_mutex(const Backend& be) {
  static std::mutex registry_mu;
  static std::map<const Backend*, std::unique_ptr<std::mutex>> registry;
  std::lock_guard lock(registry_mu);
  auto& slot = registry[&be];
  if (!slot) slot = std::make_unique<std::mutex>();
  return *slot;
}

SpanExecutor::SpanExecutor(Backend& be, const ModelSource& src, std::int64_t start,
                           std::int64_t end, Quant quant)
    : be_(be), cfg_(src.config()), start_(start), end_(end) {
  validate_llama(cfg_);
  const ModelConfig& cfg = cfg_;
  if (start < 0 || end > cfg.layers || start >= end)
    throw std::invalid_argument("SpanExecutor: block range [" + std::to_string(start) + ", " +
                                std::to_string(end) + ") outside the model's " +
                                std::to_string(cfg.layers) + " layers or empty");
  blocks_.reserve(static_cast<std::size_t>(end - start));
  for (std::int64_t i = start; i < end; ++i) blocks_.push_back(upload_block(be, src, i, quant));
}

std::uint64_t SpanExecutor::weight_bytes() const {
  std::uint64_t n = 0;
  for (const auto& b : blocks_) n += b.bytes();
  return n;
}

void SpanExecutor::check_step(std::int64_t batch, std::int64_t tokens, const KvCache& cache,
                              std::int64_t n_past) const {
  if (cache.n_blocks() != n_blocks())
    throw std::invalid_argument("SpanExecutor: cache has " + std::to_string(cache.n_blocks()) +
                                " blocks, span has " + std::to_string(n_blocks()));
  if (batch != cache.batch())
    throw std::invalid_argument("SpanExecutor: batch " + std::to_string(batch) +
                                " but the cache was allocated for " +
                                std::to_string(cache.batch()));
  if (tokens <= 0 || n_past < 0 || n_past + tokens > cache.max_length())
    throw std::length_error("SpanExecutor: position " + std::to_string(n_past) + " + " +
                            std::to_string(tokens) + " new tokens exceeds max_length " +
                            std::to_string(cache.max_length()));
}

void SpanExecutor::record(const Tensor& x, std::int64_t batch, std::int64_t tokens, KvCache& cache,
                          std::int64_t n_past) {
  check_step(batch, tokens, cache, n_past);
  const std::int64_t m = batch * tokens;
  if (x.dtype() != DType::F32 || x.numel() != m * cfg_.hidden)
    throw std::invalid_argument("SpanExecutor::record: x is " + x.describe() + ", expected f32[" +
                                std::to_string(m) + ", " + std::to_string(cfg_.hidden) + "]");
  if (!positions_.defined() || positions_.numel() != m) positions_ = be_.alloc(DType::I32, {m});
  pos_host_.resize(static_cast<std::size_t>(m));
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < tokens; ++t)
      pos_host_[static_cast<std::size_t>(b * tokens + t)] = static_cast<std::int32_t>(n_past + t);
  be_.upload(positions_, std::as_bytes(std::span(pos_host_)));
  const Tensor x2 = x.reshaped({m, cfg_.hidden});
  for (std::int64_t i = 0; i < n_blocks(); ++i)
    record_block(be_, cfg_, blocks_[static_cast<std::size_t>(i)], x2, batch, tokens, positions_,
                 cache.k(i), cache.v(i), n_past, scratch_);
}

std::vector<float> SpanExecutor::forward(std::span<const float> hidden, std::int64_t batch,
                                         std::int64_t tokens, KvCache& cache, std::int64_t n_past) {
  const std::int64_t m = batch * tokens;
  if (static_cast<std::int64_t>(hidden.size()) != m * cfg_.hidden)
    throw std::invalid_argument("SpanExecutor::forward: " + std::to_string(hidden.size()) +
                                " values for [" + std::to_string(batch) + ", " +
                                std::to_string(tokens) + ", " + std::to_string(cfg_.hidden) + "]");
  check_step(batch, tokens, cache, n_past);
  std::lock_guard lock(device_mutex(be_));
  if (!x_.defined() || x_.numel() != m * cfg_.hidden) x_ = be_.alloc(DType::F32, {m, cfg_.hidden});
  be_.upload(x_, std::as_bytes(hidden));
  record(x_, batch, tokens, cache, n_past);
  std::vector<float> out(hidden.size());
  be_.download(x_, std::as_writable_bytes(std::span(out)));
  return out;
}

}  // namespace kwaai::engine::llama
