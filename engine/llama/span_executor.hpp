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
// starting at cache position n_past of `cache`.
struct SpanSegment {
  KvCache* cache = nullptr;
  std::int64_t batch = 0, tokens = 0, n_past = 0;
};

class SpanExecutor {
 public:
  // Loads and uploads blocks [start, end) from src. Throws std::invalid_argument for a range
  // outside [0, layers); engine/model throws for any weight of the wrong shape.
  SpanExecutor(Backend& be, const ModelSource& src, std::int64_t start, std::int64_t end,
               Quant quant = Quant::None);
  SpanExecutor(const SpanExecutor&) = delete;
  SpanExecutor& operator=(const SpanExecutor&) = delete;

  Backend& backend() const { return be_; }
  const ModelConfig& config() const { return cfg_; }
  std::int64_t start() const { return start_; }
  std::int64_t end() const { return end_; }
  std::int64_t n_blocks() const { return end_ - start_; }
  std::uint64_t weight_bytes() const;

  // A cache sized for this span.
  KvCache make_cache(std::int64_t batch, std::int64_t max_length) const {
    return KvCache(be_, cfg_, n_blocks(), batch, max_length);
  }

  // Records the span on device activations x f32[B*T, hidden] (in place). The caller holds
  // device_mutex(backend()). Checks n_past + T <= cache length and the batch.
  void record(const Tensor& x, std::int64_t batch, std::int64_t tokens, KvCache& cache,
              std::int64_t n_past);

  // Host in, host out: hidden f32[B, T, hidden] -> f32[B, T, hidden]. Takes the device lock.
  std::vector<float> forward(std::span<const float> hidden, std::int64_t batch, std::int64_t tokens,
                             KvCache& cache, std::int64_t n_past);

  // Several segments in one pass: x f32[sum(batch_i * tokens_i), hidden] holds the segments'
  // rows one after another. Every block's weights are read once for all rows; each segment
  // attends to its own cache at its own n_past. Caches must be distinct and tokens > 0. The
  // caller holds device_mutex(backend()). Throws naming the segment index before recording.
  void record_batch(const Tensor& x, std::span<const SpanSegment> segments);

  // Host in, host out for record_batch: hidden[i] is f32[batch_i, tokens_i, hidden]; returns
  // one output per segment. One upload, one submission, one download. Takes the device lock.
  std::vector<std::vector<float>> forward_batch(std::span<const std::span<const float>> hidden,
                                                std::span<const SpanSegment> segments);

 private:
  // Validates a batched step's segments; returns the total row count.
  std::int64_t check_segments(std::span<const SpanSegment> segments) const;
  void check_step(std::int64_t batch, std::int64_t tokens, const KvCache& cache,
                  std::int64_t n_past) const;
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
