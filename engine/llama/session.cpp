#include "engine/llama/session.hpp"

#include <string>

namespace kwaai::engine::llama {

InferenceSession::InferenceSession(SpanExecutor& exec, const SessionOptions& opt, CacheLease lease)
    : exec_(exec), cache_(exec.make_cache(opt.batch, opt.max_length)), lease_(std::move(lease)) {}

std::int64_t InferenceSession::position() const {
  std::lock_guard lock(mu_);
  return position_;
}

std::vector<float> InferenceSession::step(std::span<const float> hidden, std::int64_t tokens,
                                          std::span<const std::int64_t> hypo_ids,
                                          std::optional<std::int64_t> start_from_position) {
  std::lock_guard lock(mu_);
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
  if (!hypo_ids.empty()) {
    std::lock_guard dev(device_mutex(exec_.backend()));
    cache_.reorder(exec_.backend(), hypo_ids);
  }
  std::vector<float> out;
  if (tokens > 0) out = exec_.forward(hidden, b, tokens, cache_, pos);
  // Only a completed step moves the position, so a failed step can simply be retried.
  position_ = pos + tokens;
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
