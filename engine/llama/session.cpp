#include "engine/llama/session.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace kwaai::engine::llama {

InferenceSession::InferenceSession(SpanExecutor& exec, const SessionOptions& opt, CacheLease lease)
    : exec_(exec),
      range_(exec.resolve_range(opt.block_begin, opt.block_end)),
      cache_(exec.make_cache(opt.batch, opt.max_length, range_.begin, range_.end)),
      lease_(std::move(lease)) {}

std::int64_t InferenceSession::position() const {
  std::lock_guard lock(mu_);
  return position_;
}

std::int64_t InferenceSession::check_step(std::span<const float> hidden, std::int64_t tokens,
                                          std::span<const std::int64_t> hypo_ids,
                                          std::optional<std::int64_t> start_from_position) const {
  const std::int64_t hsz = exec_.config().hidden, b = cache_.batch();
  if (tokens < 0 || static_cast<std::int64_t>(hidden.size()) != b * tokens * hsz)
    throw std::invalid_argument("InferenceSession::step: " + std::to_string(hidden.size()) +
                                " values, expected [" + std::to_string(b) + ", " +
                                std::to_string(tokens) + ", " + std::to_string(hsz) + "]");
  std::int64_t pos = position_;
  if (start_from_position) {
    if (*start_from_position < 0 || *start_from_position > position_)
      throw std::invalid_argument(
          "InferenceSession::step: start_from_position " + std::to_string(*start_from_position) +
          " outside [0, current position " + std::to_string(position_) + "]");
    pos = *start_from_position;
  }
  if (pos + tokens > cache_.max_length())
    throw std::length_error("Maximum length exceeded: position " + std::to_string(pos) + " + " +
                            std::to_string(tokens) + " new tokens > max_length " +
                            std::to_string(cache_.max_length()));
  // Checked here as well as in KvCache::reorder so a batched step can refuse a bad request
  // before any other request of the batch has touched its cache.
  if (!hypo_ids.empty()) {
    if (static_cast<std::int64_t>(hypo_ids.size()) != b)
      throw std::invalid_argument("InferenceSession::step: " + std::to_string(hypo_ids.size()) +
                                  " hypo_ids for a batch of " + std::to_string(b));
    for (std::size_t i = 0; i < hypo_ids.size(); ++i)
      if (hypo_ids[i] < 0 || hypo_ids[i] >= b)
        throw std::invalid_argument("InferenceSession::step: hypo_ids[" + std::to_string(i) +
                                    "] = " + std::to_string(hypo_ids[i]) + " outside [0, " +
                                    std::to_string(b) + ")");
  }
  return pos;
}

std::vector<float> InferenceSession::step(std::span<const float> hidden, std::int64_t tokens,
                                          std::span<const std::int64_t> hypo_ids,
                                          std::optional<std::int64_t> start_from_position) {
  std::lock_guard lock(mu_);
  const std::int64_t pos = check_step(hidden, tokens, hypo_ids, start_from_position);
  if (!hypo_ids.empty()) {
    std::lock_guard dev(device_mutex(exec_.backend()));
    cache_.reorder(exec_.backend(), hypo_ids);
  }
  std::vector<float> out;
  if (tokens > 0)
    out = exec_.forward(hidden, cache_.batch(), tokens, cache_, pos, range_.begin, range_.end);
  // Only a completed step moves the position, so a failed step can simply be retried.
  position_ = pos + tokens;
  return out;
}

std::vector<std::vector<float>> step_batch(std::span<const StepRequest> requests) {
  if (requests.empty()) return {};
  auto where = [](std::size_t i) { return "step_batch: request " + std::to_string(i) + ": "; };
  const SpanExecutor* exec = nullptr;
  std::vector<InferenceSession*> order;
  order.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    InferenceSession* s = requests[i].session;
    if (!s) throw std::invalid_argument(where(i) + "no session");
    if (!exec) exec = &s->exec_;
    if (&s->exec_ != exec)
      throw std::invalid_argument(
          where(i) + "session belongs to another span executor than " + "request 0's (blocks [" +
          std::to_string(s->exec_.start()) + ", " + std::to_string(s->exec_.end()) + ") vs [" +
          std::to_string(exec->start()) + ", " + std::to_string(exec->end()) + "))");
    order.push_back(s);
  }
  // Address order: every caller takes overlapping locks in the same sequence.
  std::sort(order.begin(), order.end(), std::less<>());
  for (std::size_t i = 1; i < order.size(); ++i)
    if (order[i] == order[i - 1]) {
      const auto first = std::find_if(requests.begin(), requests.end(),
                                      [&](const StepRequest& r) { return r.session == order[i]; });
      const auto dup = std::find_if(first + 1, requests.end(),
                                    [&](const StepRequest& r) { return r.session == order[i]; });
      throw std::invalid_argument(where(static_cast<std::size_t>(dup - requests.begin())) +
                                  "same session as request " +
                                  std::to_string(first - requests.begin()));
    }
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(order.size());
  for (InferenceSession* s : order) locks.emplace_back(s->mu_);

  std::vector<std::int64_t> pos(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const StepRequest& r = requests[i];
    try {
      pos[i] = r.session->check_step(r.hidden, r.tokens, r.hypo_ids, r.start_from_position);
    } catch (const std::length_error& e) {
      throw std::length_error(where(i) + e.what());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where(i) + e.what());
    }
  }

  // Rollbacks need no device work (the position alone moves back); reorders are recorded
  // first, per session, under the device lock, and are ordered before the span step below.
  SpanExecutor& ex = requests.front().session->exec_;
  {
    bool any = false;
    for (const StepRequest& r : requests) any = any || !r.hypo_ids.empty();
    if (any) {
      std::lock_guard dev(device_mutex(ex.backend()));
      for (const StepRequest& r : requests)
        if (!r.hypo_ids.empty()) r.session->cache_.reorder(ex.backend(), r.hypo_ids);
    }
  }
  // Zero-token requests only reorder and move their position; the rest run as one span step
  // per distinct block range (a pass's rows go through every block of its range), in order of
  // each range's first request.
  std::vector<std::vector<float>> out(requests.size());
  std::vector<bool> done(requests.size(), false);
  for (std::size_t first = 0; first < requests.size(); ++first) {
    if (done[first] || requests[first].tokens == 0) continue;
    const BlockRange range = requests[first].session->range_;
    std::vector<SpanSegment> segs;
    std::vector<std::span<const float>> inputs;
    std::vector<std::size_t> owner;
    for (std::size_t i = first; i < requests.size(); ++i) {
      const StepRequest& r = requests[i];
      if (done[i] || r.tokens == 0 || !(r.session->range_ == range)) continue;
      done[i] = true;
      segs.push_back({&r.session->cache_, r.session->cache_.batch(), r.tokens, pos[i], range.begin,
                      range.end});
      inputs.push_back(r.hidden);
      owner.push_back(i);
    }
    auto results = ex.forward_batch(inputs, segs);
    for (std::size_t k = 0; k < owner.size(); ++k) out[owner[k]] = std::move(results[k]);
  }
  // Only a completed step moves the positions, as in step().
  for (std::size_t i = 0; i < requests.size(); ++i)
    requests[i].session->position_ = pos[i] + requests[i].tokens;
  return out;
}

SessionManager::SessionManager(SpanExecutor& exec, CacheBudget& budget, std::int64_t max_length,
                               std::chrono::milliseconds idle_timeout, SteadyClock clock)
    : exec_(exec),
      budget_(budget),
      max_length_(max_length),
      idle_timeout_(idle_timeout),
      clock_(clock ? std::move(clock)
                   : SteadyClock([] { return std::chrono::steady_clock::now(); })) {}

std::shared_ptr<InferenceSession> SessionManager::open(const std::string& id,
                                                       const SessionOptions& opt) {
  if (opt.max_length <= 0 || opt.max_length > max_length_)
    throw std::invalid_argument("session " + id + ": max_length " + std::to_string(opt.max_length) +
                                " outside [1, " + std::to_string(max_length_) + "]");
  if (opt.batch <= 0 || opt.batch > 1024)
    throw std::invalid_argument("session " + id + ": batch " + std::to_string(opt.batch) +
                                " outside [1, 1024]");
  {
    std::lock_guard lock(mu_);
    if (sessions_.count(id)) throw std::invalid_argument("session id " + id + " already open");
  }
  close_idle();
  // Admission happens outside the map lock: waiting for budget must not block other sessions.
  (void)exec_.resolve_range(opt.block_begin, opt.block_end);  // refuse a bad range before admission
  CacheLease lease = budget_.acquire(opt.batch * opt.max_length, opt.alloc_timeout);
  auto s = std::make_shared<InferenceSession>(exec_, opt, std::move(lease));
  std::lock_guard lock(mu_);
  auto [it, inserted] = sessions_.emplace(id, Entry{s, clock_()});
  if (!inserted) throw std::invalid_argument("session id " + id + " already open");
  return s;
}

std::shared_ptr<InferenceSession> SessionManager::find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  it->second.last_used = clock_();
  return it->second.session;
}

bool SessionManager::close(const std::string& id) {
  std::shared_ptr<InferenceSession> victim;  // destroyed after the lock is released
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  victim = std::move(it->second.session);
  sessions_.erase(it);
  return true;
}

std::size_t SessionManager::close_idle() {
  std::vector<std::shared_ptr<InferenceSession>> victims;
  {
    std::lock_guard lock(mu_);
    const auto now = clock_();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (now - it->second.last_used > idle_timeout_) {
        victims.push_back(std::move(it->second.session));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return victims.size();
}

std::size_t SessionManager::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace kwaai::engine::llama
