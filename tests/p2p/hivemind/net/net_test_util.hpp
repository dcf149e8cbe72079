// Shared helpers of the hivemind network tests: in-process hosts on 127.0.0.1.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <memory>

#include "p2p/hivemind/net/dht_node.hpp"
#include "p2p/libp2p/host/node.hpp"
#include "tests/p2p/libp2p/host/test_util.hpp"

namespace kwaai::p2p::hivemind::net::test {

namespace lp = kwaai::p2p::libp2p;
// Like lp::test::run_coro, but returns as soon as the coroutine finishes: with listening hosts
// the context never runs out of work, so run_for would otherwise sit out its whole slice.
template <class F>
void run_coro(asio::io_context& ctx, F body,
              std::chrono::seconds limit = std::chrono::seconds(60)) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(ctx, std::move(body), [&](std::exception_ptr e) {
    done = true;
    error = e;
    ctx.stop();
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    ctx.run_for(std::chrono::milliseconds(50));
    if (ctx.stopped()) ctx.restart();
  }
  if (ctx.stopped()) ctx.restart();
  ASSERT_TRUE(done) << "coroutine did not finish within " << limit.count() << " s";
  if (error) std::rethrow_exception(error);
}

inline lp::Libp2pNode make_node(asio::io_context& ctx) {
  auto n = lp::Libp2pNode::create(ctx.get_executor(), lp::PrivateKey::generate_ed25519());
  auto la = lp::Multiaddr::from_string("/ip4/127.0.0.1/tcp/0");
  EXPECT_TRUE(n.host->listen(*la).ok());
  return n;
}

inline lp::Multiaddr full_addr(const lp::Host& h) {
  return h.listen_addrs().at(0).with_peer_id(h.id());
}

inline Bytes to_bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

}  // namespace kwaai::p2p::hivemind::net::test
