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
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  std::uint64_t seen = 0;
  for (;;) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    const auto chunk = chunks_[static_cast<std::size_t>(index)];
    const auto* task = task_;
    lock.unlock();

    std::exception_ptr err;
    if (chunk.first < chunk.second) {
      t_in_pool_task = true;
      try {
        (*task)(chunk.first, chunk.second);
      } catch (...) {
        err = std::current_exception();
      }
      t_in_pool_task = false;
    }
    lock.lock();
    if (err && !error_) error_ = err;
    if (--pending_ == 0) done_.notify_one();
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
  std::vector<std::pair<std::int64_t, std::int64_t>> chunks(static_cast<std::size_t>(size()));
  for (int t = 0; t < size(); ++t) {
    const std::int64_t b = std::min(n, units * t / threads * grain);
    const std::int64_t e = std::min(n, units * (t + 1) / threads * grain);
    chunks[static_cast<std::size_t>(t)] = t < threads ? std::make_pair(b, e) : std::make_pair(n, n);
  }
  {
    std::lock_guard lock(mutex_);
    chunks_ = std::move(chunks);
    task_ = &fn;
    error_ = nullptr;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
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

  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
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
