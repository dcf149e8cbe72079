#include "engine/llama/kv_cache.hpp"

#include <string>

namespace kwaai::engine::llama {

CacheLease& CacheLease::operator=(CacheLease&& o) noexcept {
  if (this != &o) {
    release();
    budget_ = o.budget_;
    tokens_ = o.tokens_;
    o.budget_ = nullptr;
  }
  return *this;
}

void CacheLease::release() {
  if (budget_) budget_->give_back(tokens_);
  budget_ = nullptr;
}

CacheBudget::CacheBudget(std::int64_t capacity_tokens) : capacity_(capacity_tokens) {
  if (capacity_tokens < 0)
    throw std::invalid_argument("CacheBudget: negative capacity " +
                                std::to_string(capacity_tokens));
}

CacheLease CacheBudget::acquire(std::int64_t tokens, std::chrono::milliseconds timeout) {
  if (tokens < 0)
    throw std::invalid_argument("CacheBudget::acquire: negative token count " +
                                std::to_string(tokens));
  if (tokens > capacity_)
    throw CacheAllocationFailed("cache request of " + std::to_string(tokens) +
                                " tokens exceeds the whole cache budget of " +
                                std::to_string(capacity_) + " tokens");
  std::unique_lock lock(mu_);
  const bool ok = freed_.wait_for(lock, timeout, [&] { return capacity_ - used_ >= tokens; });
  if (!ok)
    throw CacheAllocationFailed("cache full: " + std::to_string(tokens) + " tokens requested, " +
                                std::to_string(capacity_ - used_) + " of " +
                                std::to_string(capacity_) + " free after waiting " +
                                std::to_string(timeout.count()) + " ms");
  used_ += tokens;
  return CacheLease(this, tokens);
}

std::int64_t CacheBudget::available() const {
  std::lock_guard lock(mu_);
  return capacity_ - used_;
}

void CacheBudget::give_back(std::int64_t tokens) {
  {
    std::lock_guard lock(mu_);
    used_ -= tokens;
  }
  freed_.notify_all();
}

KvCache::KvCache(Backend& be, const ModelConfig& cfg, std::int64_t n_blocks, std::int64_t batch,
                 std::int64_t max_length)
    : batch_(batch), max_length_(max_length) {
  if (batch <= 0 || max_length <= 0 || n_blocks <= 0)
    throw std::invalid_argument("KvCache: batch " + std::to_string(batch) + ", max_length " +
                                std::to_string(max_length) + ", blocks " +
                                std::to_string(n_blocks) + " must all be > 0");
  const Shape shape{batch, max_length, cfg.kv_heads, cfg.head_dim};
  for (std::int64_t i = 0; i < n_blocks; ++i) {
    k_.push_back(be.alloc(DType::F32, shape));
    v_.push_back(be.alloc(DType::F32, shape));
  }
}

std::uint64_t KvCache::bytes() const {
  std::uint64_t n = 0;
  for (const auto& t : k_) n += t.nbytes();
  for (const auto& t : v_) n += t.nbytes();
  return n;
}

void KvCache::reorder(Backend& be, std::span<const std::int64_t> hypo_ids) {
  if (static_cast<std::int64_t>(hypo_ids.size()) != batch_)
    throw std::invalid_argument("KvCache::reorder: " + std::to_string(hypo_ids.size()) +
                                " hypo_ids for a batch of " + std::to_string(batch_));
  bool identity = true;
  for (std::size_t b = 0; b < hypo_ids.size(); ++b) {
    if (hypo_ids[b] < 0 || hypo_ids[b] >= batch_)
      throw std::invalid_argument("KvCache::reorder: hypo_ids[" + std::to_string(b) +
                                  "] = " + std::to_string(hypo_ids[b]) + " outside [0, " +
                                  std::to_string(batch_) + ")");
    identity = identity && hypo_ids[b] == static_cast<std::int64_t>(b);
  }
  if (identity) return;
  if (!tmp_.defined()) tmp_ = be.alloc(DType::F32, k_.front().shape());
  // Gather into tmp, then copy back: rows may be read by several targets, so no in-place swap.
  for (auto* set : {&k_, &v_}) {
    for (const Tensor& t : *set) {
      for (std::int64_t b = 0; b < batch_; ++b)
        be.copy(t.slice_rows(hypo_ids[b], hypo_ids[b] + 1), tmp_.slice_rows(b, b + 1));
      be.copy(tmp_, t);
    }
  }
}

}  // namespace kwaai::engine::llama
