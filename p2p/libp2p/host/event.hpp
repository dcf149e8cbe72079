// Coroutine wake-up primitives on one executor. Boost 1.74 has no asio channels, so a
// steady_timer that is cancelled to signal stands in for a condition variable.
#pragma once

#include "p2p/libp2p/host/asio.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <utility>

namespace kwaai::p2p::libp2p {

// Edge-triggered signal. All users run on the same single-threaded executor and re-check their
// condition after every wake-up, so a notify() with no waiter is never needed later.
class Event {
 public:
  explicit Event(const asio::any_io_executor& ex) : timer_(ex) {
    timer_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  // Suspends until notify(). Any number of coroutines may wait at once; notify wakes them all.
  asio::awaitable<void> wait() {
    if (waiters_ == 0 && timer_.expiry() != std::chrono::steady_clock::time_point::max())
      timer_.expires_at(std::chrono::steady_clock::time_point::max());
    ++waiters_;
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    --waiters_;
  }
  // Single-waiter form with a deadline: true if notified, false if the deadline passed.
  asio::awaitable<bool> wait_until(std::chrono::steady_clock::time_point deadline) {
    timer_.expires_at(deadline);
    ++waiters_;
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    --waiters_;
    co_return ec == asio::error::operation_aborted;
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
  int waiters_ = 0;
};

// Runs `on_expiry` once after `timeout` unless disarmed or destroyed first: the way timeouts
// are imposed on sockets and streams (cancel the IO from a timer).
class Watchdog {
 public:
  Watchdog(const asio::any_io_executor& ex, std::chrono::steady_clock::duration timeout,
           std::function<void()> on_expiry)
      : timer_(ex, timeout), state_(std::make_shared<State>()) {
    timer_.async_wait([fn = std::move(on_expiry), state = state_](boost::system::error_code ec) {
      // An expiry already queued when disarm() ran must not act: the target may be gone.
      if (!ec && state->armed) {
        state->fired = true;
        fn();
      }
    });
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() { disarm(); }
  void disarm() {
    state_->armed = false;
    timer_.cancel();
  }
  bool fired() const { return state_->fired; }

 private:
  struct State {
    bool armed = true;
    bool fired = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace kwaai::p2p::libp2p
