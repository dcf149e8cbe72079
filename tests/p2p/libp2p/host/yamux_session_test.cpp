// Yamux session over plain loopback TCP (no Noise): both directions, flow control,
// limits and misbehaving peers scripted with raw frames.
#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "p2p/libp2p/host/yamux_session.hpp"
#include "p2p/libp2p/yamux_frame.hpp"
#include "tests/p2p/libp2p/host/test_util.hpp"

namespace kwaai::p2p::libp2p {
namespace {

using namespace std::chrono_literals;
using test::run_coro;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Echo everything on every inbound stream, then close.
void echo_handler(YamuxStreamPtr s) {
  asio::co_spawn(
      s->session().executor(),
      [s]() -> asio::awaitable<void> {
        std::vector<std::uint8_t> buf(64 * 1024);
        for (;;) {
          auto n = co_await s->read_some(buf);
          if (!n || *n == 0) break;
          if (!(co_await s->write(ByteView(buf.data(), *n)))) co_return;
        }
        (void)s->close_write();
      },
      asio::detached);
}

struct Pair {
  std::shared_ptr<YamuxSession> client, server;
};

Pair make_pair(asio::io_context& ctx, YamuxConfig cfg = {}) {
  auto [a, b] = test::tcp_pair(ctx);
  Pair p;
  p.client = YamuxSession::create(std::make_unique<TcpStream>(std::move(a)),
                                  YamuxSession::Role::kClient, cfg);
  p.server = YamuxSession::create(std::make_unique<TcpStream>(std::move(b)),
                                  YamuxSession::Role::kServer, cfg);
  return p;
}

asio::awaitable<Bytes> echo_roundtrip(std::shared_ptr<YamuxSession> s, Bytes payload) {
  auto st = co_await s->open_stream();
  EXPECT_TRUE(st.ok()) << (st ? "" : st.error().to_string());
  if (!st) co_return Bytes{};
  auto stream = *st;
  // Write and read concurrently: the echo cannot finish before we drain it.
  asio::co_spawn(
      s->executor(),
      [stream, payload]() -> asio::awaitable<void> {
        auto w = co_await stream->write(payload);
        EXPECT_TRUE(w.ok()) << (w ? "" : w.error().to_string());
        (void)stream->close_write();
      },
      asio::detached);
  Bytes got;
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    auto n = co_await stream->read_some(buf);
    EXPECT_TRUE(n.ok()) << (n ? "" : n.error().to_string());
    if (!n || *n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  co_return got;
}

TEST(YamuxSession, EchoesOneMebibyteFromClientAndFromServer) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  asio::io_context ctx;
  auto p = make_pair(ctx);
  p.client->start(echo_handler);
  p.server->start(echo_handler);
  const Bytes payload = test::random_bytes(1 << 20, seed);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await echo_roundtrip(p.client, payload), payload);
    EXPECT_EQ(co_await echo_roundtrip(p.server, payload), payload);
  });
}

TEST(YamuxSession, FastStreamGrowsItsReceiveWindow) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  asio::io_context ctx;
  auto p = make_pair(ctx);
  YamuxStreamPtr inbound;
  p.server->start([&](YamuxStreamPtr s) {
    inbound = s;
    echo_handler(s);
  });
  p.client->start(nullptr);
  const Bytes payload = test::random_bytes(16 << 20, seed);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await echo_roundtrip(p.client, payload), payload);
  });
  ASSERT_TRUE(inbound);
  EXPECT_GT(inbound->receive_window_size(), yamux::kInitialWindow);
  EXPECT_LE(inbound->receive_window_size(), yamux::kMaxWindow);
}

TEST(YamuxSession, ThousandConcurrentStreamsOnOneSession) {
  asio::io_context ctx;
  auto p = make_pair(ctx);
  p.server->start(echo_handler);
  p.client->start(nullptr);
  int ok = 0;
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    int finished = 0;
    for (int i = 0; i < 1000; ++i) {
      asio::co_spawn(
          ctx,
          [&, i]() -> asio::awaitable<void> {
            Bytes payload(1024, static_cast<std::uint8_t>(i));
            if (co_await echo_roundtrip(p.client, payload) == payload) ++ok;
            ++finished;
          },
          asio::detached);
    }
    while (finished < 1000) co_await sleep_for(10ms);
  });
  EXPECT_EQ(ok, 1000);
  EXPECT_EQ(p.client->stream_count(), 0u);
}

TEST(YamuxSession, PingReturnsRoundTripTime) {
  asio::io_context ctx;
  auto p = make_pair(ctx);
  p.server->start(nullptr);
  p.client->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    auto r = co_await p.client->ping(2000ms);
    CO_ASSERT_TRUE(r.ok());
    EXPECT_GT(r->count(), 0);
    auto r2 = co_await p.server->ping(2000ms);
    EXPECT_TRUE(r2.ok());
  });
}

TEST(YamuxSession, GoAwayStopsNewStreamsButKeepsOldOnes) {
  asio::io_context ctx;
  auto p = make_pair(ctx);
  p.server->start(echo_handler);
  p.client->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    auto s = co_await p.client->open_stream();
    CO_ASSERT_TRUE(s.ok());
    asio::co_spawn(ctx, p.server->shutdown(), asio::detached);
    co_await sleep_for(50ms);
    EXPECT_TRUE(p.client->remote_went_away() || p.client->closed());
    auto s2 = co_await p.client->open_stream();
    EXPECT_FALSE(s2.ok());
  });
}

TEST(YamuxSession, ResetWakesBlockedReaderWithError) {
  asio::io_context ctx;
  auto p = make_pair(ctx);
  YamuxStreamPtr inbound;
  p.server->start([&](YamuxStreamPtr s) { inbound = s; });
  p.client->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    auto s = co_await p.client->open_stream();
    CO_ASSERT_TRUE(s.ok());
    auto w = co_await (*s)->write(as_bytes("x"));
    CO_ASSERT_TRUE(w.ok());
    while (!inbound) co_await sleep_for(5ms);
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          co_await sleep_for(30ms);
          inbound->reset();
        },
        asio::detached);
    std::uint8_t b[16];
    auto n = co_await (*s)->read_some(b);
    CO_ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().code, Errc::kClosed);
    EXPECT_EQ(p.server->stream_count(), 0u);
  });
}

TEST(YamuxSession, InboundStreamsBeyondLimitAreReset) {
  asio::io_context ctx;
  YamuxConfig cfg;
  cfg.max_inbound_streams = 2;
  auto p = make_pair(ctx, cfg);
  std::vector<YamuxStreamPtr> held;
  p.server->start([&](YamuxStreamPtr s) { held.push_back(s); });
  p.client->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    std::vector<YamuxStreamPtr> mine;
    for (int i = 0; i < 3; ++i) {
      auto s = co_await p.client->open_stream();
      CO_ASSERT_TRUE(s.ok());
      mine.push_back(*s);
    }
    std::uint8_t b[4];
    auto n = co_await mine[2]->read_some(b);
    EXPECT_FALSE(n.ok());
    EXPECT_EQ(held.size(), 2u);
    EXPECT_FALSE(p.client->closed());
  });
}

// A raw peer speaking bytes at a server session.
struct RawPeer {
  asio::ip::tcp::socket sock;
  std::shared_ptr<YamuxSession> server;
};

RawPeer make_raw(asio::io_context& ctx, YamuxConfig cfg = {}) {
  auto [a, b] = test::tcp_pair(ctx);
  auto s = YamuxSession::create(std::make_unique<TcpStream>(std::move(b)),
                                YamuxSession::Role::kServer, cfg);
  return RawPeer{std::move(a), s};
}

asio::awaitable<void> send_frame(asio::ip::tcp::socket& s, yamux::Header h, ByteView payload = {}) {
  Bytes b;
  yamux::append_header(h, b);
  append(b, payload);
  co_await asio::async_write(s, asio::buffer(b), asio::use_awaitable);
}

asio::awaitable<void> wait_closed(std::shared_ptr<YamuxSession> s) {
  for (int i = 0; i < 200 && !s->closed(); ++i) co_await sleep_for(10ms);
}

TEST(YamuxSession, PeerExceedingReceiveWindowIsDisconnected) {
  asio::io_context ctx;
  auto raw = make_raw(ctx);
  raw.server->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    co_await send_frame(raw.sock, yamux::window_update(1, 0, yamux::flags::kSyn));
    Bytes big(yamux::kInitialWindow + 1, 0xab);
    co_await send_frame(raw.sock, yamux::data(1, static_cast<std::uint32_t>(big.size())), big);
    co_await wait_closed(raw.server);
    EXPECT_TRUE(raw.server->closed());
    EXPECT_NE(raw.server->close_reason().find("window"), std::string::npos)
        << raw.server->close_reason();
  });
}

TEST(YamuxSession, WrongStreamParityIsProtocolError) {
  asio::io_context ctx;
  auto raw = make_raw(ctx);
  raw.server->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    // Stream 2 is a server id: a client opening it means both sides think they are servers.
    co_await send_frame(raw.sock, yamux::window_update(2, 0, yamux::flags::kSyn));
    co_await wait_closed(raw.server);
    EXPECT_TRUE(raw.server->closed());
    EXPECT_NE(raw.server->close_reason().find("parity"), std::string::npos);
  });
}

TEST(YamuxSession, MalformedHeaderClosesSessionWithGoAway) {
  asio::io_context ctx;
  auto raw = make_raw(ctx);
  raw.server->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    const std::uint8_t junk[12] = {7, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    co_await asio::async_write(raw.sock, asio::buffer(junk), asio::use_awaitable);
    // Expect a GoAway(protocol error) among what the server sends before closing.
    Bytes got;
    std::uint8_t buf[256];
    boost::system::error_code ec;
    for (;;) {
      std::size_t n = co_await raw.sock.async_read_some(
          asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      got.insert(got.end(), buf, buf + n);
    }
    bool saw_goaway = false;
    for (std::size_t off = 0; off + 12 <= got.size(); off += 12) {
      auto h = yamux::decode_header(ByteView(got).subspan(off, 12));
      if (h && h->type == yamux::FrameType::kGoAway && h->length == 1) saw_goaway = true;
      if (h && h->type == yamux::FrameType::kData) off += h->length;
    }
    EXPECT_TRUE(saw_goaway);
    EXPECT_TRUE(raw.server->closed());
  });
}

TEST(YamuxSession, LazyOpenWithDataAndFinBeforeAckIsDelivered) {
  asio::io_context ctx;
  auto raw = make_raw(ctx);
  Bytes received;
  bool eof = false;
  raw.server->start([&](YamuxStreamPtr s) {
    asio::co_spawn(
        ctx,
        [&, s]() -> asio::awaitable<void> {
          std::uint8_t buf[64];
          for (;;) {
            auto n = co_await s->read_some(buf);
            if (!n) co_return;
            if (*n == 0) break;
            received.insert(received.end(), buf, buf + *n);
          }
          eof = true;
        },
        asio::detached);
  });
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    // go's lazy open: SYN on DATA carrying bytes, then FIN, all before any reply.
    co_await send_frame(raw.sock, yamux::data(1, 5, yamux::flags::kSyn), as_bytes("hello"));
    co_await send_frame(raw.sock, yamux::window_update(1, 0, yamux::flags::kFin));
    for (int i = 0; i < 100 && !eof; ++i) co_await sleep_for(10ms);
    EXPECT_TRUE(eof);
    EXPECT_EQ(as_chars(received), "hello");
  });
}

TEST(YamuxSession, UnknownGoAwayCodeAndRstErrorCodeAreTolerated) {
  asio::io_context ctx;
  auto raw = make_raw(ctx);
  YamuxStreamPtr inbound;
  raw.server->start([&](YamuxStreamPtr s) { inbound = s; });
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    co_await send_frame(raw.sock, yamux::window_update(1, 0, yamux::flags::kSyn));
    // go-yamux v5: RST carries an error code in `length`, which is not a window delta.
    co_await send_frame(raw.sock, yamux::window_update(1, 0x1234, yamux::flags::kRst));
    for (int i = 0; i < 100 && !(inbound && inbound->is_reset()); ++i) co_await sleep_for(10ms);
    CO_ASSERT_TRUE(inbound);
    EXPECT_TRUE(inbound->is_reset());
    EXPECT_FALSE(raw.server->closed());
    yamux::Header ga{yamux::FrameType::kGoAway, 0, 0, 0x42};
    co_await send_frame(raw.sock, ga);
    co_await wait_closed(raw.server);
    EXPECT_TRUE(raw.server->closed());
    EXPECT_NE(raw.server->close_reason().find("go-away"), std::string::npos);
  });
}

TEST(YamuxSession, KeepaliveClosesSessionWhenPeerStopsAnswering) {
  asio::io_context ctx;
  YamuxConfig cfg;
  cfg.keepalive_interval = 100ms;  // shortened from 30 s so the test takes well under a second
  cfg.ping_timeout = 200ms;
  auto raw = make_raw(ctx, cfg);
  raw.server->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    co_await wait_closed(raw.server);
    EXPECT_TRUE(raw.server->closed());
    EXPECT_NE(raw.server->close_reason().find("keep-alive"), std::string::npos)
        << raw.server->close_reason();
  });
}

TEST(YamuxSession, AnswersPingWithSameValue) {
  asio::io_context ctx;
  auto raw = make_raw(ctx);
  raw.server->start(nullptr);
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    co_await send_frame(raw.sock, yamux::ping(0xdeadbeef, false));
    // The server's own RTT ping may come first; look for our ACK among the first frames.
    bool answered = false;
    for (int i = 0; i < 3 && !answered; ++i) {
      std::uint8_t h[12];
      co_await asio::async_read(raw.sock, asio::buffer(h), asio::use_awaitable);
      auto hd = yamux::decode_header(h);
      CO_ASSERT_TRUE(hd.ok());
      if (hd->type == yamux::FrameType::kPing && hd->has(yamux::flags::kAck))
        answered = hd->length == 0xdeadbeef;
    }
    EXPECT_TRUE(answered);
  });
}

}  // namespace
}  // namespace kwaai::p2p::libp2p

namespace kwaai::p2p::libp2p {
namespace {

TEST(YamuxSession, SessionMemoryIsFreedSoonAfterPeerVanishes) {
  asio::io_context ctx;
  auto raw = make_raw(ctx);  // default 30 s keep-alive: must not keep the session alive
  raw.server->start(nullptr);
  std::weak_ptr<YamuxSession> weak = raw.server;
  raw.server.reset();
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    co_await send_frame(raw.sock, yamux::window_update(1, 0, yamux::flags::kSyn));
    raw.sock.close();
    for (int i = 0; i < 100 && !weak.expired(); ++i) co_await sleep_for(10ms);
    EXPECT_TRUE(weak.expired());
  });
}

}  // namespace
}  // namespace kwaai::p2p::libp2p
