// Inference sessions over a span: the server-side state of one Petals rpc_inference stream.
//
// A session owns a KV cache for its span (admitted against the global CacheBudget), a current
// position, and a fixed batch of hypotheses. Each step may first roll the position back
// (start_from_position) and reorder the hypotheses (hypo_ids, beam search), then runs the new
// tokens. Sessions are closed explicitly or when idle longer than the manager's timeout; the
// cache and its budget share are freed when the last reference to the session goes away.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/llama/kv_cache.hpp"
#include "engine/llama/span_executor.hpp"

namespace kwaai::engine::llama {

using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;

struct SessionOptions {
  std::int64_t batch = 1;
  std::int64_t max_length = 0;  // tokens of cache; 0 < max_length <= manager's max_length
  std::chrono::milliseconds alloc_timeout{0};  // 0: refuse at once when the budget is full
  // Model blocks [block_begin, block_end) the session runs: a consecutive sub-range of the
  // executor's span (a Petals client's route may start or end a hop inside a server's span).
  // -1, -1: the whole span. The session's cache holds only these blocks.
  std::int64_t block_begin = -1, block_end = -1;
};

class InferenceSession;

// One session's share of a batched step (see step_batch).
struct StepRequest {
  InferenceSession* session = nullptr;     // all of one SpanExecutor, all distinct
  std::span<const float> hidden;           // f32[batch_i, tokens_i, hidden]
  std::int64_t tokens = 0;                 // may differ per request
  std::span<const std::int64_t> hypo_ids;  // empty or batch_i indices
  std::optional<std::int64_t> start_from_position;
};

// Steps several sessions of one span together. One output per request, in order
// (f32[batch_i, tokens_i, hidden]). Sessions over different block sub-ranges are grouped by
// range: one engine pass per distinct range (a single pass when all run the same range). Every
// request is validated before anything runs (exceptions name the request index and what is wrong,
// and leave every session unchanged); on success the result equals calling InferenceSession::step
// on each request in turn. The sessions are locked in address order, so concurrent callers with
// overlapping sets cannot deadlock.
std::vector<std::vector<float>> step_batch(std::span<const StepRequest> requests);

class InferenceSession {
 public:
  // Throws std::invalid_argument when opt's block range is empty or outside exec's span.
  InferenceSession(SpanExecutor& exec, const SessionOptions& opt, CacheLease lease);

  // hidden f32[B, T, hidden] (T may be 0: nothing runs, an empty result comes back).
  // hypo_ids: empty, or B indices into the current batch (applied before computing).
  // start_from_position: if set, the position is first moved back to it (it may not exceed the
  // current position). Throws std::length_error when position + T > max_length.
  std::vector<float> step(std::span<const float> hidden, std::int64_t tokens,
                          std::span<const std::int64_t> hypo_ids = {},
                          std::optional<std::int64_t> start_from_position = std::nullopt);

  std::int64_t position() const;
  std::int64_t batch() const { return cache_.batch(); }
  std::int64_t max_length() const { return cache_.max_length(); }
  std::int64_t cache_tokens() const { return lease_.tokens(); }
  BlockRange block_range() const { return range_; }

 private:
  friend std::vector<std::vector<float>> step_batch(std::span<const StepRequest> requests);
  // Checks a step against the current state (caller holds mu_) and returns the position the
  // new tokens start at. Throws std::invalid_argument / std::length_error; changes nothing.
  std::int64_t check_step(std::span<const float> hidden, std::int64_t tokens,
                          std::span<const std::int64_t> hypo_ids,
                          std::optional<std::int64_t> start_from_position) const;

  SpanExecutor& exec_;
  mutable std::mutex mu_;  // one step at a time per session
  BlockRange range_;       // before cache_: the cache is sized from it
  KvCache cache_;
  CacheLease lease_;
  std::int64_t position_ = 0;
};

class SessionManager {
 public:
  // max_length: the largest max_length a session may ask for (Petals' inference_max_length).
  SessionManager(SpanExecutor& exec, CacheBudget& budget, std::int64_t max_length,
                 std::chrono::milliseconds idle_timeout, SteadyClock clock = {});

  // Admits and allocates a session. Throws std::invalid_argument (duplicate id, bad sizes) or
  // CacheAllocationFailed (budget full after opt.alloc_timeout).
  std::shared_ptr<InferenceSession> open(const std::string& id, const SessionOptions& opt);
  // The session, marked as used now; nullptr if unknown (closed or expired).
  std::shared_ptr<InferenceSession> find(const std::string& id);
  bool close(const std::string& id);
  // Closes sessions unused for longer than the idle timeout; returns how many.
  std::size_t close_idle();
  std::size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<InferenceSession> session;
    std::chrono::steady_clock::time_point last_used;
  };
  SpanExecutor& exec_;
  CacheBudget& budget_;
  const std::int64_t max_length_;
  const std::chrono::milliseconds idle_timeout_;
  SteadyClock clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> sessions_;
};

}  // namespace kwaai::engine::llama
