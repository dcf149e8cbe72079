// The one thread that touches the device for a server: a bounded FIFO of jobs. Inference steps
// queued while the device was busy are submitted together as one engine step_batch call; any
// other job (cache allocation/release, a forward pass) runs alone, in queue order. Results go
// back to the io executor through the completion handler's executor (asio::post), so an
// awaiting coroutine resumes on the io thread.
#pragma once

#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/llama/session.hpp"

namespace kwaai::serve {

namespace asio = boost::asio;

// Thrown (through the awaitable) for work refused because the queue is full or stopping.
class ServerBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One inference step of one session, waiting for the device.
struct StepTask {
  std::shared_ptr<engine::llama::InferenceSession> session;
  std::vector<float> hidden;  // f32[batch, tokens, hidden]
  std::int64_t tokens = 0;
  std::vector<std::int64_t> hypo_ids;
  std::optional<std::int64_t> start_from_position;
  // Called on the worker thread with the output or the error, and the engine seconds spent.
  std::function<void(std::vector<float>, std::exception_ptr, double)> done;
};

class ComputeWorker {
 public:
  explicit ComputeWorker(std::size_t max_queued);
  ~ComputeWorker();  // stop()
  ComputeWorker(const ComputeWorker&) = delete;
  ComputeWorker& operator=(const ComputeWorker&) = delete;

  // False when the queue already holds max_queued compute jobs (or the worker stopped).
  // `control` jobs (cache allocation/release) bypass the bound: they are tiny and refusing a
  // release would keep cache pinned.
  bool submit(std::function<void()> job, bool control = false);
  bool submit_step(StepTask task);
  // Runs what is queued, then joins. Later submissions are refused.
  void stop();

  std::uint64_t batched_submissions() const;

 private:
  struct Job {
    std::function<void()> run;     // generic job, or
    std::optional<StepTask> step;  // a batchable inference step
    bool counts = true;            // against max_queued
  };
  void loop();
  void run_steps(std::vector<StepTask>& steps);

  const std::size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::size_t counted_ = 0;
  bool stopping_ = false;
  std::uint64_t batched_ = 0;
  std::thread thread_;
};

// Runs fn() on the worker and resumes the awaiting coroutine on its own executor with the
// result (or rethrows fn's exception, or ServerBusy when the job was refused).
template <class T>
asio::awaitable<T> on_worker(ComputeWorker& worker, std::function<T()> fn, bool control = false) {
  auto init = [&worker, control, fn = std::move(fn)](auto handler) mutable {
    auto ex = asio::get_associated_executor(handler);
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto job = [h, ex, fn = std::move(fn)]() mutable {
      std::exception_ptr err;
      T value{};
      try {
        value = fn();
      } catch (...) {
        err = std::current_exception();
      }
      asio::post(ex, [h, err, value = std::move(value)]() mutable { (*h)(err, std::move(value)); });
    };
    if (!worker.submit(std::move(job), control))
      asio::post(ex, [h]() mutable {
        (*h)(std::make_exception_ptr(ServerBusy("server busy: compute queue is full")), T{});
      });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(std::exception_ptr, T)>(std::move(init),
                                                                       asio::use_awaitable);
}

struct StepOutcome {
  std::vector<float> output;
  double compute_seconds = 0;
};

// Queues one inference step (batched with whatever else is waiting) and awaits its output.
asio::awaitable<StepOutcome> step_on_worker(ComputeWorker& worker, StepTask task);

}  // namespace kwaai::serve
