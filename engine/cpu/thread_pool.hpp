// A small persistent pool for the CPU backend's heavy ops. The calling thread takes part
// in the work, so a pool of N threads keeps N - 1 workers. After a task a worker spins for
// a short while (kSpin) watching for the next one before it parks on a condition variable,
// and the caller likewise spins before it sleeps on the workers: a decode step is hundreds
// of ops a few microseconds to a millisecond long, and a futex wake-up per op cost ~35 us
// here (more than a whole small mat-vec). Idle pools still sleep.
// One parallel_for runs at a time (callers are serialised); a parallel_for issued from
// inside a task runs serially instead of deadlocking.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kwaai::engine::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on contiguous chunks covering [0, n), one chunk per thread, with
  // chunk boundaries rounded to multiples of `grain`. Returns when every chunk is done;
  // rethrows the first exception a chunk threw.
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn,
                    std::int64_t grain = 1);

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serialises parallel_for callers
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // How long a worker (or the caller) spins before it sleeps.
  static constexpr std::chrono::microseconds kSpin{30};

  // generation_ and stop_ change under mutex_ (so a sleeper cannot miss them) but are read
  // without it while spinning; task_ and chunks_ are written before generation_ is bumped.
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(std::int64_t, std::int64_t)>* task_ = nullptr;
  std::vector<std::pair<std::int64_t, std::int64_t>> chunks_;
  std::exception_ptr error_;
};

// Physical cores available to this process (distinct core ids among the CPUs in the
// affinity mask); falls back to hardware_concurrency().
int physical_core_count();

}  // namespace kwaai::engine::cpu
