#include "engine/cpu/thread_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace kwaai::engine::cpu {

namespace {
thread_local bool t_in_pool_task = false;
}

ThreadPool::ThreadPool(int threads) {
  const int n = std::max(1, threads);
  workers_.reserve(static_cast<std::size_t>(n - 1));
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or `budget` has passed; true if done() became true.
template <class Done>
bool spin_until(Done done, std::chrono::microseconds budget) {
  const auto end = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= end) return done();
  }
}

}  // namespace

void ThreadPool::worker_loop(int index) {
  std::uint64_t seen = 0;
  const auto has_work = [&] {
    return stop_.load(std::memory_order_acquire) ||
           generation_.load(std::memory_order_acquire) != seen;
  };
  for (;;) {
    if (!spin_until(has_work, kSpin)) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, has_work);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    const auto chunk = chunks_[static_cast<std::size_t>(index)];
    const auto* task = task_;

    if (chunk.first < chunk.second) {
      t_in_pool_task = true;
      try {
        (*task)(chunk.first, chunk.second);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      t_in_pool_task = false;
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Under the mutex, so a caller between its check and its wait cannot miss this.
      std::lock_guard lock(mutex_);
      done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(std::int64_t n,
                              const std::function<void(std::int64_t, std::int64_t)>& fn,
                              std::int64_t grain) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(1, grain);
  const std::int64_t units = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<std::int64_t>(size(), units));
  if (threads <= 1 || t_in_pool_task) {
    fn(0, n);
    return;
  }
  std::lock_guard call_lock(call_mutex_);
  chunks_.resize(static_cast<std::size_t>(size()));
  for (int t = 0; t < size(); ++t) {
    const std::int64_t b = std::min(n, units * t / threads * grain);
    const std::int64_t e = std::min(n, units * (t + 1) / threads * grain);
    chunks_[static_cast<std::size_t>(t)] =
        t < threads ? std::make_pair(b, e) : std::make_pair(n, n);
  }
  task_ = &fn;
  error_ = nullptr;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();

  std::exception_ptr mine;
  t_in_pool_task = true;
  try {
    fn(chunks_[0].first, chunks_[0].second);
  } catch (...) {
    mine = std::current_exception();
  }
  t_in_pool_task = false;

  const auto all_done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done, kSpin)) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, all_done);
  }
  std::lock_guard lock(mutex_);  // orders error_ written by a worker before this read
  task_ = nullptr;
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

int physical_core_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::set<std::pair<std::string, std::string>> cores;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
      std::string p, c;
      if (!(pkg >> p) || !(core >> c)) {
        cores.clear();
        break;
      }
      cores.emplace(p, c);
    }
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace kwaai::engine::cpu
