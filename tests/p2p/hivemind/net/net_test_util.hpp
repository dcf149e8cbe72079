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
using lp::test::run_coro;

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
