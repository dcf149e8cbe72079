// Helpers for host tests: run a coroutine on an io_context with a hard time limit, and make
// connected loopback TCP pairs.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <random>
#include <utility>

#include "p2p/libp2p/host/byte_stream.hpp"

namespace kwaai::p2p::libp2p::test {

// Runs `body` to completion; fails the test (instead of hanging) after `limit`.
template <class F>
void run_coro(asio::io_context& ctx, F body,
              std::chrono::seconds limit = std::chrono::seconds(20)) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(ctx, std::move(body), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    ctx.run_for(std::chrono::milliseconds(50));
    if (ctx.stopped()) ctx.restart();
  }
  ASSERT_TRUE(done) << "coroutine did not finish within " << limit.count() << " s";
  if (error) std::rethrow_exception(error);
}

// A connected pair of TCP sockets on 127.0.0.1.
inline std::pair<asio::ip::tcp::socket, asio::ip::tcp::socket> tcp_pair(asio::io_context& ctx) {
  asio::ip::tcp::acceptor acc(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket a(ctx), b(ctx);
  a.connect(acc.local_endpoint());
  acc.accept(b);
  return {std::move(a), std::move(b)};
}

inline std::uint64_t fresh_seed() {
  return std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
}

inline Bytes random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

}  // namespace kwaai::p2p::libp2p::test

// gtest's ASSERT_* macros `return`, which coroutines may not: record the failure, co_return.
#define CO_ASSERT_TRUE(cond)                       \
  do {                                             \
    if (!(cond)) {                                 \
      ADD_FAILURE() << "assertion failed: " #cond; \
      co_return;                                   \
    }                                              \
  } while (0)
#define CO_ASSERT_FALSE(cond) CO_ASSERT_TRUE(!(cond))
