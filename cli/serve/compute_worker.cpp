#include "cli/serve/compute_worker.hpp"

#include <chrono>
#include <unordered_set>

namespace kwaai::serve {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

ComputeWorker::ComputeWorker(std::size_t max_queued)
    : max_queued_(max_queued == 0 ? 1 : max_queued), thread_([this] { loop(); }) {}

ComputeWorker::~ComputeWorker() {
  stop();
}

bool ComputeWorker::submit(std::function<void()> job, bool control) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return false;
    if (!control && counted_ >= max_queued_) return false;
    queue_.push_back(Job{std::move(job), std::nullopt, !control});
    if (!control) ++counted_;
  }
  cv_.notify_one();
  return true;
}

bool ComputeWorker::submit_step(StepTask task) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || counted_ >= max_queued_) return false;
    queue_.push_back(Job{{}, std::move(task), true});
    ++counted_;
  }
  cv_.notify_one();
  return true;
}

void ComputeWorker::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::uint64_t ComputeWorker::batched_submissions() const {
  std::lock_guard lk(mu_);
  return batched_;
}

void ComputeWorker::loop() {
  for (;;) {
    std::deque<Job> jobs;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      jobs.swap(queue_);
      counted_ = 0;
    }
    // Everything that arrived while the device was busy: the steps go out as one batch (one
    // per session: a session never has two steps in flight, its stream awaits each one), the
    // other jobs in their order.
    std::vector<StepTask> steps;
    for (auto& j : jobs)
      if (j.step) steps.push_back(std::move(*j.step));
    if (!steps.empty()) run_steps(steps);
    for (auto& j : jobs)
      if (j.run) j.run();
  }
}

void ComputeWorker::run_steps(std::vector<StepTask>& steps) {
  // Sessions must be distinct within one step_batch call; a repeat (not expected) waits for
  // the next round of this same call.
  std::vector<StepTask> later;
  std::vector<StepTask> now;
  std::unordered_set<const void*> seen;
  for (auto& s : steps) {
    if (seen.insert(s.session.get()).second)
      now.push_back(std::move(s));
    else
      later.push_back(std::move(s));
  }
  const auto t0 = std::chrono::steady_clock::now();
  bool batched_ok = false;
  if (now.size() > 1) {
    std::vector<engine::llama::StepRequest> reqs;
    reqs.reserve(now.size());
    for (auto& s : now)
      reqs.push_back({s.session.get(), s.hidden, s.tokens, s.hypo_ids, s.start_from_position});
    try {
      auto outs = engine::llama::step_batch(reqs);
      const double per = seconds_since(t0) / static_cast<double>(now.size());
      {
        std::lock_guard lk(mu_);
        ++batched_;
      }
      for (std::size_t i = 0; i < now.size(); ++i) now[i].done(std::move(outs[i]), nullptr, per);
      batched_ok = true;
    } catch (...) {
      // step_batch validates every request before running anything and leaves the sessions
      // unchanged on error, so running them one by one tells each its own outcome.
    }
  }
  if (!batched_ok) {
    for (auto& s : now) {
      const auto t1 = std::chrono::steady_clock::now();
      try {
        auto out = s.session->step(s.hidden, s.tokens, s.hypo_ids, s.start_from_position);
        s.done(std::move(out), nullptr, seconds_since(t1));
      } catch (...) {
        s.done({}, std::current_exception(), seconds_since(t1));
      }
    }
  }
  if (!later.empty()) run_steps(later);
}

asio::awaitable<StepOutcome> step_on_worker(ComputeWorker& worker, StepTask task) {
  auto init = [&worker, task = std::move(task)](auto handler) mutable {
    auto ex = asio::get_associated_executor(handler);
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    task.done = [h, ex](std::vector<float> out, std::exception_ptr err, double secs) {
      asio::post(ex, [h, err, o = StepOutcome{std::move(out), secs}]() mutable {
        (*h)(err, std::move(o));
      });
    };
    if (!worker.submit_step(std::move(task)))
      asio::post(ex, [h]() mutable {
        (*h)(std::make_exception_ptr(ServerBusy("server busy: compute queue is full")),
             StepOutcome{});
      });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(std::exception_ptr, StepOutcome)>(
      std::move(init), asio::use_awaitable);
}

}  // namespace kwaai::serve
