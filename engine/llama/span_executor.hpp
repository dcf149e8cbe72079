// Runs blocks [start, end) of a Llama model for a batch of sequences.
//
// A step is: upload the input hidden states and positions, record every op of every block,
// download the output — one submission on Vulkan, no flush between ops. Several executors and
// sessions may share one Backend; device_lock() serialises their steps because a backend's
// recording stream is a single ordered queue.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "engine/llama/block.hpp"
#include "engine/llama/kv_cache.hpp"

namespace kwaai::engine::llama {

// The mutex guarding a backend's stream (one per Backend object, created on first use).
std::mutex& device_mutex(const Backend& be);

// One session's part of a batched span step: `batch` sequences of `tokens` new tokens each,
// starting at cache position n_past of `cache`. The segment runs model blocks
// [block_begin, block_end), a consecutive sub-range of the executor's span (Petals serves any
// consecutive run of its blocks); -1 for both means the executor's whole span. The cache holds
// exactly block_end - block_begin blocks.
struct SpanSegment {
  KvCache* cache = nullptr;
  std::int64_t batch = 0, tokens = 0, n_past = 0;
  std::int64_t block_begin = -1, block_end = -1;
};

// A resolved block range [begin, end) in model block indices.
struct BlockRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
  bool operator==(const BlockRange&) const = default;
};

class SpanExecutor {
 public:
  // Loads and uploads blocks [start, end) from src. Throws std::invalid_argument for a range
  // outside [0, layers); engine/model throws for any weight of the wrong shape.
  SpanExecutor(Backend& be, const ModelSource& src, std::int64_t start, std::int64_t end,
               Quant quant = kNoQuant);
  SpanExecutor(const SpanExecutor&) = delete;
  SpanExecutor& operator=(const SpanExecutor&) = delete;

  Backend& backend() const { return be_; }
  const ModelConfig& config() const { return cfg_; }
  std::int64_t start() const { return start_; }
  std::int64_t end() const { return end_; }
  std::int64_t n_blocks() const { return end_ - start_; }
  std::uint64_t weight_bytes() const;
  // What one token's step reads (a MoE block: its router and experts_per_token experts).
  std::uint64_t active_weight_bytes() const;

  // Resolves a requested sub-range (-1, -1: the whole span). Throws std::invalid_argument
  // naming both ranges when [begin, end) is empty or not inside [start(), end()).
  BlockRange resolve_range(std::int64_t begin, std::int64_t end) const;

  // A cache sized for this span, or for the sub-range [begin, end) of it.
  KvCache make_cache(std::int64_t batch, std::int64_t max_length, std::int64_t begin = -1,
                     std::int64_t end = -1) const {
    return KvCache(be_, cfg_, resolve_range(begin, end).size(), batch, max_length);
  }

  // Records blocks [begin, end) (default: the span) on device activations x f32[B*T, hidden]
  // (in place). The caller holds device_mutex(backend()). Checks n_past + T <= cache length,
  // the batch, and that the cache holds exactly the range's blocks.
  void record(const Tensor& x, std::int64_t batch, std::int64_t tokens, KvCache& cache,
              std::int64_t n_past, std::int64_t begin = -1, std::int64_t end = -1);

  // Host in, host out: hidden f32[B, T, hidden] -> f32[B, T, hidden]. Takes the device lock.
  std::vector<float> forward(std::span<const float> hidden, std::int64_t batch, std::int64_t tokens,
                             KvCache& cache, std::int64_t n_past, std::int64_t begin = -1,
                             std::int64_t end = -1);

  // Several segments in one pass: x f32[sum(batch_i * tokens_i), hidden] holds the segments'
  // rows one after another. Every block's weights are read once for all rows; each segment
  // attends to its own cache at its own n_past. Caches must be distinct and tokens > 0, and
  // all segments must run the same block range (callers with mixed ranges submit one batch
  // per range, as step_batch does). The caller holds device_mutex(backend()). Throws naming
  // the segment index before recording.
  void record_batch(const Tensor& x, std::span<const SpanSegment> segments);

  // Host in, host out for record_batch: hidden[i] is f32[batch_i, tokens_i, hidden]; returns
  // one output per segment. One upload, one submission, one download. Takes the device lock.
  std::vector<std::vector<float>> forward_batch(std::span<const std::span<const float>> hidden,
                                                std::span<const SpanSegment> segments);

 private:
  // Validates a batched step's segments; returns the total row count and their common range.
  std::int64_t check_segments(std::span<const SpanSegment> segments, BlockRange& range) const;
  void check_step(std::int64_t batch, std::int64_t tokens, const KvCache& cache,
                  std::int64_t n_past, const BlockRange& range) const;
  Backend& be_;
  ModelConfig cfg_;
  std::int64_t start_, end_;
  std::vector<DeviceBlock> blocks_;
  BlockScratch scratch_;  // guarded by the device lock
  Tensor positions_, x_;  // idem, resized with the step's row count
  std::vector<std::int32_t> pos_host_;
  std::vector<BlockSegment> block_segs_;  // idem, one per segment of the step
  std::vector<float> host_x_;             // idem, the concatenated rows of a batched step
};

}  // namespace kwaai::engine::llama
