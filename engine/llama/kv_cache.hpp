// KV cache storage and the global cache budget.
//
// A KvCache holds, for every block of a span, K and V as f32[B, max_length, kv_heads, head_dim]
// on the device. The budget counts *tokens* of cache (batch * max_length per session, for the
// whole span) the way Petals reports cache_tokens_left, and hands out RAII leases so a
// session's share returns to the pool whenever its cache is destroyed, however that happens.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <stdexcept>
#include <vector>

#include "engine/core/backend.hpp"
#include "engine/llama/llama_config.hpp"

namespace kwaai::engine::llama {

// Thrown when a session's cache cannot be admitted (now, or within its alloc timeout).
class CacheAllocationFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CacheBudget;

class CacheLease {
 public:
  CacheLease() = default;
  CacheLease(CacheLease&& o) noexcept : budget_(o.budget_), tokens_(o.tokens_) {
    o.budget_ = nullptr;
  }
  CacheLease& operator=(CacheLease&& o) noexcept;
  CacheLease(const CacheLease&) = delete;
  CacheLease& operator=(const CacheLease&) = delete;
  ~CacheLease() { release(); }
  std::int64_t tokens() const { return budget_ ? tokens_ : 0; }
  void release();

 private:
  friend class CacheBudget;
  CacheLease(CacheBudget* b, std::int64_t t) : budget_(b), tokens_(t) {}
  CacheBudget* budget_ = nullptr;
  std::int64_t tokens_ = 0;
};

// Thread-safe token pool. The budget must outlive every lease taken from it.
class CacheBudget {
 public:
  explicit CacheBudget(std::int64_t capacity_tokens);
  // Waits up to `timeout` (zero: not at all) for `tokens` to be free. A request larger than
  // the whole capacity is refused at once. Throws CacheAllocationFailed with the numbers.
  CacheLease acquire(std::int64_t tokens, std::chrono::milliseconds timeout);
  std::int64_t capacity() const { return capacity_; }
  std::int64_t available() const;

 private:
  friend class CacheLease;
  void give_back(std::int64_t tokens);
  const std::int64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::int64_t used_ = 0;
};

class KvCache {
 public:
  KvCache(Backend& be, const ModelConfig& cfg, std::int64_t n_blocks, std::int64_t batch,
          std::int64_t max_length);
  std::int64_t batch() const { return batch_; }
  std::int64_t max_length() const { return max_length_; }
  std::int64_t n_blocks() const { return static_cast<std::int64_t>(k_.size()); }
  const Tensor& k(std::int64_t block) const { return k_.at(static_cast<std::size_t>(block)); }
  const Tensor& v(std::int64_t block) const { return v_.at(static_cast<std::size_t>(block)); }
  std::uint64_t bytes() const;
  // Beam search: row b becomes the old row hypo_ids[b], in every block. Recorded on the
  // backend (no flush); the caller holds the device lock. Throws std::invalid_argument for a
  // wrong count or an index outside [0, batch).
  void reorder(Backend& be, std::span<const std::int64_t> hypo_ids);

 private:
  std::int64_t batch_, max_length_;
  std::vector<Tensor> k_, v_;
  Tensor tmp_;  // one block's K or V, the gather target (allocated on first reorder)
};

}  // namespace kwaai::engine::llama
