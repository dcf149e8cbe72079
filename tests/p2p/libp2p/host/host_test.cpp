// Hosts talking to each other over loopback: the full upgrade (mss, Noise, early or mss
// muxer), stream negotiation, identify, ping, kad, and the connection manager's limits.
#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "p2p/libp2p/host/host.hpp"
#include "p2p/libp2p/multistream.hpp"
#include "p2p/libp2p/protocols/identify.hpp"
#include "p2p/libp2p/protocols/kad.hpp"
#include "p2p/libp2p/protocols/ping.hpp"
#include "tests/p2p/libp2p/host/test_util.hpp"

namespace kwaai::p2p::libp2p {
namespace {

using namespace std::chrono_literals;
using test::run_coro;

constexpr const char* kEcho = "/interop/echo/1.0.0";

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<void> echo(YamuxStreamPtr s, ConnectionPtr) {
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;
    if (!(co_await s->write(ByteView(buf.data(), *n)))) co_return;
  }
  (void)s->close_write();
}

struct Node {
  std::shared_ptr<Host> host;
  std::shared_ptr<IdentifyService> identify;
  std::shared_ptr<PingService> ping;
  std::shared_ptr<KadService> kad;
  Multiaddr addr() const { return host->listen_addrs().at(0).with_peer_id(host->id()); }
};

Node make_node(asio::io_context& ctx, HostConfig cfg = {}) {
  Node n;
  n.host = Host::create(ctx.get_executor(), PrivateKey::generate_ed25519(), cfg);
  auto la = Multiaddr::from_string("/ip4/127.0.0.1/tcp/0");
  EXPECT_TRUE(la.ok());
  EXPECT_TRUE(n.host->listen(*la).ok());
  n.host->set_handler(kEcho, echo);
  n.identify = IdentifyService::attach(n.host);
  n.ping = PingService::attach(n.host);
  n.kad = KadService::attach(n.host, n.identify);
  return n;
}

asio::awaitable<Bytes> echo_through(std::shared_ptr<Host> from, PeerId to, Bytes payload) {
  std::vector<std::string> protos{kEcho};
  auto ns = co_await from->new_stream(to, protos);
  EXPECT_TRUE(ns.ok()) << (ns ? "" : ns.error().to_string());
  if (!ns) co_return Bytes{};
  auto s = ns->stream;
  asio::co_spawn(
      from->executor(),
      [s, payload]() -> asio::awaitable<void> {
        EXPECT_TRUE((co_await s->write(payload)).ok());
        (void)s->close_write();
      },
      asio::detached);
  Bytes got;
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  co_return got;
}

TEST(Host, DialsOverNoiseAndEchoesOneMebibyteInBothDirections) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  const Bytes payload = test::random_bytes(1 << 20, seed);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    auto c = co_await b.host->connect(a.addr());
    CO_ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)->peer, a.host->id());
    EXPECT_TRUE((*c)->early_muxer);
    EXPECT_EQ(co_await echo_through(b.host, a.host->id(), payload), payload);
    // The listener opens a stream back over the same connection.
    EXPECT_EQ(co_await echo_through(a.host, b.host->id(), payload), payload);
    EXPECT_EQ(a.host->connections().size(), 1u);
  });
}

TEST(Host, FallsBackToMultistreamMuxerNegotiationWithoutEarlyData) {
  asio::io_context ctx;
  HostConfig cfg;
  cfg.early_muxer = false;
  auto a = make_node(ctx), b = make_node(ctx, cfg);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    auto c = co_await b.host->connect(a.addr());
    CO_ASSERT_TRUE(c.ok());
    EXPECT_FALSE((*c)->early_muxer);
    const Bytes payload(1000, 7);
    EXPECT_EQ(co_await echo_through(b.host, a.host->id(), payload), payload);
  });
}

TEST(Host, DialRejectsPeerWithUnexpectedIdentity) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  const PeerId other = PeerId::from_public_key(PrivateKey::generate_ed25519().public_key());
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    auto c = co_await b.host->connect(a.host->listen_addrs()[0].with_peer_id(other));
    CO_ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code, Errc::kPeerIdMismatch) << c.error().to_string();
    EXPECT_TRUE(b.host->connections().empty());
  });
}

TEST(Host, UnknownProtocolIsRefusedWithNa) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    std::vector<std::string> protos{"/nope/1.0.0"};
    auto ns = co_await b.host->new_stream(a.host->id(), protos);
    CO_ASSERT_FALSE(ns.ok());
    EXPECT_EQ(ns.error().code, Errc::kNegotiationFailed) << ns.error().to_string();
    // The connection survives a refused stream.
    std::vector<std::string> second{"/nope/2.0.0", kEcho};
    auto ok = co_await b.host->new_stream(a.host->id(), second);
    CO_ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->protocol, kEcho);
  });
}

TEST(Host, IdentifyRecordsProtocolsAgentKeyAndAddresses) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    for (int i = 0; i < 200 && (a.identify->completed() == 0 || b.identify->completed() == 0); ++i)
      co_await sleep_for(10ms);
    auto seen_by_b = b.host->peer_store().get(a.host->id());
    CO_ASSERT_TRUE(seen_by_b.has_value() && seen_by_b->identified);
    EXPECT_EQ(seen_by_b->agent_version, "kwaainet/0.1.0");
    EXPECT_EQ(seen_by_b->protocol_version, "ipfs/0.1.0");
    for (const char* p :
         {kEcho, "/ipfs/id/1.0.0", "/ipfs/id/push/1.0.0", "/ipfs/ping/1.0.0", "/ipfs/kad/1.0.0"})
      EXPECT_NE(std::find(seen_by_b->protocols.begin(), seen_by_b->protocols.end(), p),
                seen_by_b->protocols.end())
          << p;
    CO_ASSERT_TRUE(seen_by_b->public_key.has_value());
    EXPECT_EQ(*seen_by_b->public_key, a.host->identity().public_key());
    EXPECT_NE(
        std::find(seen_by_b->addrs.begin(), seen_by_b->addrs.end(), a.host->listen_addrs()[0]),
        seen_by_b->addrs.end());
    // b's observed address as a saw it is b's side of the TCP connection.
    CO_ASSERT_TRUE(seen_by_b->observed_addr.has_value());
    EXPECT_EQ(seen_by_b->observed_addr->tcp_endpoint()->host, "127.0.0.1");
    auto seen_by_a = a.host->peer_store().get(b.host->id());
    CO_ASSERT_TRUE(seen_by_a.has_value() && seen_by_a->identified);
    EXPECT_EQ(seen_by_a->agent_version, "kwaainet/0.1.0");
    // Kad learned the other DHT server from identify.
    EXPECT_TRUE(a.kad->table().find(b.host->id()).has_value());
  });
}

TEST(Host, IdentifyPushAnnouncesNewProtocol) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    for (int i = 0; i < 200 && (a.identify->completed() == 0 || b.identify->completed() == 0); ++i)
      co_await sleep_for(10ms);
    a.host->set_handler("/late/1.0.0", echo);
    for (int i = 0; i < 200 && !b.host->peer_store().supports(a.host->id(), "/late/1.0.0"); ++i)
      co_await sleep_for(10ms);
    EXPECT_TRUE(b.host->peer_store().supports(a.host->id(), "/late/1.0.0"));
  });
}

TEST(Host, PingWorksInBothDirections) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    auto r1 = co_await b.ping->ping(a.host->id(), 5000ms);
    EXPECT_TRUE(r1.ok()) << (r1 ? "" : r1.error().to_string());
    auto r2 = co_await a.ping->ping(b.host->id(), 5000ms);
    EXPECT_TRUE(r2.ok()) << (r2 ? "" : r2.error().to_string());
  });
}

TEST(Host, ThousandConcurrentStreamsOnOneNoiseConnection) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  int ok = 0, finished = 0;
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    for (int i = 0; i < 1000; ++i)
      asio::co_spawn(
          ctx,
          [&, i]() -> asio::awaitable<void> {
            Bytes payload(512, static_cast<std::uint8_t>(i));
            if (co_await echo_through(b.host, a.host->id(), payload) == payload) ++ok;
            ++finished;
          },
          asio::detached);
    while (finished < 1000) co_await sleep_for(10ms);
  });
  EXPECT_EQ(ok, 1000);
  EXPECT_EQ(b.host->connections().size(), 1u);
}

TEST(Host, SilentPeerIsCutOffByHandshakeTimeoutAndHostKeepsServing) {
  asio::io_context ctx;
  HostConfig cfg;
  cfg.handshake_timeout = 200ms;
  auto a = make_node(ctx, cfg), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    asio::ip::tcp::socket raw(ctx);
    auto ep = a.host->listen_addrs()[0].tcp_endpoint();
    co_await raw.async_connect({asio::ip::make_address(ep->host), ep->port}, asio::use_awaitable);
    // Say nothing; the listener must drop us (EOF or reset) after its handshake timeout.
    std::uint8_t buf[64];
    boost::system::error_code ec;
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      co_await raw.async_read_some(asio::buffer(buf),
                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    auto c = co_await b.host->connect(a.addr());
    EXPECT_TRUE(c.ok());
  });
}

TEST(Host, GarbageInsteadOfHandshakeIsRejectedAndHostKeepsServing) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    asio::ip::tcp::socket raw(ctx);
    auto ep = a.host->listen_addrs()[0].tcp_endpoint();
    co_await raw.async_connect({asio::ip::make_address(ep->host), ep->port}, asio::use_awaitable);
    // A valid multistream header and /noise, then a Noise message 1 of the wrong size.
    Bytes junk = multistream::encode_message("/multistream/1.0.0");
    append(junk, multistream::encode_message("/noise"));
    junk.insert(junk.end(), {0x00, 0x05, 1, 2, 3, 4, 5});
    co_await asio::async_write(raw, asio::buffer(junk), asio::use_awaitable);
    std::uint8_t buf[256];
    boost::system::error_code ec;
    for (;;) {
      co_await raw.async_read_some(asio::buffer(buf),
                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    EXPECT_TRUE(a.host->connections().empty());
    EXPECT_TRUE((co_await b.host->connect(a.addr())).ok());
  });
}

TEST(Host, ConnectionLimitRefusesExtraPeers) {
  asio::io_context ctx;
  HostConfig cfg;
  cfg.max_connections = 1;
  auto a = make_node(ctx, cfg), b = make_node(ctx), c = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    auto second = co_await c.host->connect(a.addr());
    // Refused either during the handshake or right after it: no stream gets through.
    if (second) {
      std::vector<std::string> protos{kEcho};
      auto ns = co_await c.host->new_stream(*second, protos);
      EXPECT_FALSE(ns.ok());
    }
    co_await sleep_for(50ms);
    EXPECT_EQ(a.host->connections().size(), 1u);
  });
}

TEST(Host, IdleConnectionIsClosed) {
  asio::io_context ctx;
  HostConfig cfg;
  cfg.idle_timeout = 300ms;
  auto a = make_node(ctx, cfg), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    for (int i = 0; i < 300 && !a.host->connections().empty(); ++i) co_await sleep_for(10ms);
    EXPECT_TRUE(a.host->connections().empty());
    for (int i = 0; i < 100 && !b.host->connections().empty(); ++i) co_await sleep_for(10ms);
    EXPECT_TRUE(b.host->connections().empty());
  });
}

TEST(Host, CloseSendsGoAwayAndPeerDropsConnection) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await b.host->connect(a.addr())).ok());
    co_await a.host->close();
    EXPECT_TRUE(a.host->connections().empty());
    for (int i = 0; i < 100 && !b.host->connections().empty(); ++i) co_await sleep_for(10ms);
    EXPECT_TRUE(b.host->connections().empty());
  });
}

TEST(Host, KadLookupFindsPeerThroughThirdNode) {
  asio::io_context ctx;
  auto a = make_node(ctx), b = make_node(ctx), c = make_node(ctx);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    std::vector<Multiaddr> boot{a.addr()};
    EXPECT_GE(co_await b.kad->bootstrap(boot), 1u);
    EXPECT_GE(co_await c.kad->bootstrap(boot), 1u);
    for (int i = 0; i < 200 && !a.kad->table().find(b.host->id()); ++i) co_await sleep_for(10ms);
    auto found = co_await c.kad->find_peer(b.host->id());
    CO_ASSERT_TRUE(found.ok());
    EXPECT_NE(std::find(found->addrs.begin(), found->addrs.end(), b.host->listen_addrs()[0]),
              found->addrs.end());
    // The address works.
    auto conn = co_await c.host->connect(b.host->id());
    EXPECT_TRUE(conn.ok());
  });
}

TEST(RoutingTable, ClosestIsSortedByXorDistanceAndBucketsAreBounded) {
  const PeerId self = PeerId::from_public_key(PrivateKey::generate_ed25519().public_key());
  RoutingTable t(self);
  std::vector<PeerId> ids;
  for (int i = 0; i < 300; ++i) {
    ids.push_back(PeerId::from_public_key(PrivateKey::generate_ed25519().public_key()));
    t.add(ids.back(), {});
  }
  // Half of random peers share no prefix bit with us: that bucket holds at most k of them.
  EXPECT_LT(t.size(), 300u);
  EXPECT_FALSE(t.add(self, {}));
  const KadKey target = kad_key(ids[7]);
  auto c = t.closest(target, 20);
  ASSERT_EQ(c.size(), 20u);
  for (std::size_t i = 1; i < c.size(); ++i)
    EXPECT_FALSE(kad_closer(target, kad_key(c[i].id), kad_key(c[i - 1].id)));
  EXPECT_EQ(common_prefix_length(target, target), 256);
}

}  // namespace
}  // namespace kwaai::p2p::libp2p
