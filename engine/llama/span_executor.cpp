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

std::uint64_t SpanExecutor::active_weight_bytes() const {
  std::uint64_t n = 0;
  for (const auto& b : blocks_) n += b.active_bytes(cfg_);
  return n;
}

BlockRange SpanExecutor::resolve_range(std::int64_t begin, std::int64_t end) const {
  if (begin == -1 && end == -1) return {start_, end_};
  if (begin < start_ || end > end_ || begin >= end)
    throw std::invalid_argument("SpanExecutor: block range [" + std::to_string(begin) + ", " +
                                std::to_string(end) + ") is empty or not inside the span [" +
                                std::to_string(start_) + ", " + std::to_string(end_) + ")");
  return {begin, end};
}

void SpanExecutor::check_step(std::int64_t batch, std::int64_t tokens, const KvCache& cache,
                              std::int64_t n_past, const BlockRange& range) const {
  if (cache.n_blocks() != range.size())
    throw std::invalid_argument("SpanExecutor: cache has " + std::to_string(cache.n_blocks()) +
                                " blocks, block range [" + std::to_string(range.begin) + ", " +
                                std::to_string(range.end) + ") has " +
                                std::to_string(range.size()));
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
                          std::int64_t n_past, std::int64_t begin, std::int64_t end) {
  check_step(batch, tokens, cache, n_past, resolve_range(begin, end));
  const SpanSegment one{&cache, batch, tokens, n_past, begin, end};
  record_batch(x, std::span(&one, 1));
}

std::int64_t SpanExecutor::check_segments(std::span<const SpanSegment> segments,
                                          BlockRange& range) const {
  if (segments.empty())
    throw std::invalid_argument("SpanExecutor: a batched step with no segments");
  std::int64_t m = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const SpanSegment& g = segments[i];
    const std::string where = "SpanExecutor: segment " + std::to_string(i) + ": ";
    if (!g.cache) throw std::invalid_argument(where + "no cache");
    BlockRange r;
    try {
      r = resolve_range(g.block_begin, g.block_end);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + e.what());
    }
    if (i == 0) range = r;
    // Rows of one pass go through every block of the pass, so one range per pass.
    if (r != range)
      throw std::invalid_argument(where + "block range [" + std::to_string(r.begin) + ", " +
                                  std::to_string(r.end) + ") differs from segment 0's [" +
                                  std::to_string(range.begin) + ", " + std::to_string(range.end) +
                                  ")");
    // Two segments writing one cache would race within the step; refuse instead.
    for (std::size_t j = 0; j < i; ++j)
      if (segments[j].cache == g.cache)
        throw std::invalid_argument(where + "same cache as segment " + std::to_string(j));
    try {
      check_step(g.batch, g.tokens, *g.cache, g.n_past, range);
    } catch (const std::length_error& e) {
      throw std::length_error(where + e.what());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + e.what());
    }
    m += g.batch * g.tokens;
  }
  return m;
}

void SpanExecutor::record_batch(const Tensor& x, std::span<const SpanSegment> segments) {
  BlockRange range;
  const std::int64_t m = check_segments(segments, range);
  if (x.dtype() != DType::F32 || x.numel() != m * cfg_.hidden)
    throw std::invalid_argument("SpanExecutor::record: x is " + x.describe() + ", expected f32[" +
                                std::to_string(m) + ", " + std::to_string(cfg_.hidden) + "]");
  if (!positions_.defined() || positions_.numel() != m) positions_ = be_.alloc(DType::I32, {m});
  pos_host_.resize(static_cast<std::size_t>(m));
  std::size_t r = 0;
  for (const SpanSegment& g : segments)
    for (std::int64_t b = 0; b < g.batch; ++b)
      for (std::int64_t t = 0; t < g.tokens; ++t)
        pos_host_[r++] = static_cast<std::int32_t>(g.n_past + t);
  be_.upload(positions_, std::as_bytes(std::span(pos_host_)));
  const Tensor x2 = x.reshaped({m, cfg_.hidden});
  block_segs_.resize(segments.size());
  // i indexes the range's blocks (and so the caches); blocks_ is indexed from start_.
  for (std::int64_t i = 0; i < range.size(); ++i) {
    for (std::size_t j = 0; j < segments.size(); ++j) {
      const SpanSegment& g = segments[j];
      block_segs_[j] = {g.batch, g.tokens, g.n_past, g.cache->k(i), g.cache->v(i)};
    }
    record_block(be_, cfg_, blocks_[static_cast<std::size_t>(range.begin - start_ + i)], x2,
                 positions_, block_segs_, scratch_);
  }
}

std::vector<std::vector<float>> SpanExecutor::forward_batch(
    std::span<const std::span<const float>> hidden, std::span<const SpanSegment> segments) {
  if (hidden.size() != segments.size())
    throw std::invalid_argument("SpanExecutor::forward_batch: " + std::to_string(hidden.size()) +
                                " inputs for " + std::to_string(segments.size()) + " segments");
  BlockRange range;
  const std::int64_t m = check_segments(segments, range);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const SpanSegment& g = segments[i];
    if (static_cast<std::int64_t>(hidden[i].size()) != g.batch * g.tokens * cfg_.hidden)
      throw std::invalid_argument("SpanExecutor::forward_batch: segment " + std::to_string(i) +
                                  ": " + std::to_string(hidden[i].size()) + " values for [" +
                                  std::to_string(g.batch) + ", " + std::to_string(g.tokens) + ", " +
                                  std::to_string(cfg_.hidden) + "]");
  }
  std::lock_guard lock(device_mutex(be_));
  host_x_.clear();
  for (const auto& h : hidden) host_x_.insert(host_x_.end(), h.begin(), h.end());
  if (!x_.defined() || x_.numel() != m * cfg_.hidden) x_ = be_.alloc(DType::F32, {m, cfg_.hidden});
  be_.upload(x_, std::as_bytes(std::span(host_x_)));
  record_batch(x_, segments);
  be_.download(x_, std::as_writable_bytes(std::span(host_x_)));
  std::vector<std::vector<float>> out(segments.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    out[i].assign(host_x_.begin() + static_cast<std::ptrdiff_t>(at),
                  host_x_.begin() + static_cast<std::ptrdiff_t>(at + hidden[i].size()));
    at += hidden[i].size();
  }
  return out;
}

std::vector<float> SpanExecutor::forward(std::span<const float> hidden, std::int64_t batch,
                                         std::int64_t tokens, KvCache& cache, std::int64_t n_past,
                                         std::int64_t begin, std::int64_t end) {
  const std::int64_t m = batch * tokens;
  if (static_cast<std::int64_t>(hidden.size()) != m * cfg_.hidden)
    throw std::invalid_argument("SpanExecutor::forward: " + std::to_string(hidden.size()) +
                                " values for [" + std::to_string(batch) + ", " +
                                std::to_string(tokens) + ", " + std::to_string(cfg_.hidden) + "]");
  check_step(batch, tokens, cache, n_past, resolve_range(begin, end));
  std::lock_guard lock(device_mutex(be_));
  if (!x_.defined() || x_.numel() != m * cfg_.hidden) x_ = be_.alloc(DType::F32, {m, cfg_.hidden});
  be_.upload(x_, std::as_bytes(hidden));
  record(x_, batch, tokens, cache, n_past, begin, end);
  std::vector<float> out(hidden.size());
  be_.download(x_, std::as_writable_bytes(std::span(out)));
  return out;
}

}  // namespace kwaai::engine::llama
