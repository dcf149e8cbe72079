// Unary and streaming hivemind RPCs over real libp2p streams on loopback: the envelope bytes
// against the wire_tap vector (real p2pd daemons), bad input, per-peer caps, timeouts.
#include <boost/asio/steady_timer.hpp>

#include <algorithm>

#include "p2p/libp2p/host/stream_io.hpp"
#include "tests/p2p/hivemind/net/net_test_util.hpp"
#include "tests/p2p/hivemind/vectors.hpp"

namespace kwaai::p2p::hivemind::net::test {
namespace {

namespace vectors = kwaai::p2p::hivemind::testing;
using vectors::hex;

struct Pair {
  asio::io_context ctx;
  lp::Libp2pNode server = make_node(ctx);
  lp::Libp2pNode client = make_node(ctx);
  void connect() {
    run_coro(ctx, [&]() -> asio::awaitable<void> {
      auto c = co_await client.host->connect(full_addr(*server.host));
      CO_ASSERT_TRUE(c.ok());
    });
  }
};

// Reads raw bytes until one complete delimited message has arrived; returns exactly its bytes.
asio::awaitable<Bytes> read_one_raw(lp::YamuxStream& s) {
  Bytes raw;
  DelimitedDecoder dec;
  Bytes buf(4096);
  for (;;) {
    auto n = co_await s.read_some(std::span<std::uint8_t>(buf));
    if (!n || *n == 0) co_return raw;
    raw.insert(raw.end(), buf.begin(), buf.begin() + *n);
    dec.feed(ByteView(buf.data(), *n));
    auto m = dec.next();
    if (!m || *m) co_return raw;
  }
}

Bytes replace_all(Bytes b, const Bytes& from, const Bytes& to) {
  auto it = std::search(b.begin(), b.end(), from.begin(), from.end());
  while (it != b.end()) {
    std::copy(to.begin(), to.end(), it);
    it = std::search(it + to.size(), b.end(), from.begin(), from.end());
  }
  return b;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Our caller writes exactly the bytes p2pd wrote (callId, target peer, proto, data), and parses
// the bytes p2pd answered with; the target PeerID differs (same length), so it is substituted.
TEST(HivemindRpc, UnaryCallerBytesMatchWireTapVector) {
  const auto v = vectors::load_vectors("dht_rpc.json");
  for (const auto& c : v["wire_tap"]["calls"]) {
    SCOPED_TRACE(c["proto"].get<std::string>());
    Pair p;
    p.connect();
    const auto& msg = c["request_decoded"]["message"];
    const Bytes call_id = hex(msg["callId"]["$bytes"]);
    const Bytes tap_peer = hex(msg["callUnary"]["peer"]["$bytes"]);
    const Bytes data = hex(msg["callUnary"]["data"]["$bytes"]);
    const std::string proto = c["proto"];
    ASSERT_EQ(tap_peer.size(), p.server.host->id().bytes().size());
    const Bytes expected_request =
        replace_all(hex(c["request_wire_hex"]), tap_peer, p.server.host->id().bytes());
    const Bytes response_wire = hex(c["response_wire_hex"]);

    Bytes seen;
    p.server.host->set_handler(
        proto, [&](lp::YamuxStreamPtr s, lp::ConnectionPtr) -> asio::awaitable<void> {
          seen = co_await read_one_raw(*s);
          (void)co_await s->write(response_wire);
          (void)s->close_write();
        });
    run_coro(p.ctx, [&]() -> asio::awaitable<void> {
      CallOptions opt;
      opt.call_id = call_id;
      auto r = co_await call_unary(*p.client.host, p.server.host->id(), proto, data, opt);
      CO_ASSERT_TRUE(r.ok());
      const auto& answer = c["response_decoded"]["message"]["unaryResponse"];
      if (answer.contains("error")) {
        EXPECT_TRUE(r->is_error);
        EXPECT_EQ(r->error, c["response_decoded"]["error_text"].get<std::string>());
      } else {
        EXPECT_FALSE(r->is_error);
        EXPECT_EQ(r->response, hex(answer["response"]["$bytes"]));
      }
    });
    EXPECT_EQ(to_hex(seen), to_hex(expected_request));
  }
}

// Our server answers the vector's request with exactly the bytes p2pd answered with.
TEST(HivemindRpc, UnaryServerBytesMatchWireTapVector) {
  const auto v = vectors::load_vectors("dht_rpc.json");
  for (const auto& c : v["wire_tap"]["calls"]) {
    SCOPED_TRACE(c["proto"].get<std::string>());
    Pair p;
    p.connect();
    const std::string proto = c["proto"];
    const auto& answer = c["response_decoded"]["message"]["unaryResponse"];
    const Bytes request_data = hex(c["request_decoded"]["message"]["callUnary"]["data"]["$bytes"]);
    auto server = RpcServer::create(p.server.host);
    Bytes got_request;
    server->add_unary(
        proto, [&](const lp::PeerId& caller, Bytes req) -> asio::awaitable<UnaryOutcome> {
          EXPECT_EQ(caller, p.client.host->id());
          got_request = req;
          if (answer.contains("error"))
            co_return UnaryOutcome::failure(c["response_decoded"]["error_text"].get<std::string>());
          co_return UnaryOutcome::success(hex(answer["response"]["$bytes"]));
        });
    Bytes reply;
    run_coro(p.ctx, [&]() -> asio::awaitable<void> {
      std::vector<std::string> protos{proto};
      auto ns = co_await p.client.host->new_stream(p.server.host->id(), protos);
      CO_ASSERT_TRUE(ns.ok());
      CO_ASSERT_TRUE((co_await ns->stream->write(hex(c["request_wire_hex"]))).ok());
      reply = co_await read_one_raw(*ns->stream);
    });
    EXPECT_EQ(got_request, request_data);
    EXPECT_EQ(to_hex(reply), c["response_wire_hex"].get<std::string>());
  }
}

// A handler that throws answers unaryResponse.error; the caller sees the text.
TEST(HivemindRpc, HandlerExceptionBecomesErrorAnswer) {
  Pair p;
  p.connect();
  auto server = RpcServer::create(p.server.host);
  server->add_unary("Test.rpc_fail", [](const lp::PeerId&, Bytes) -> asio::awaitable<UnaryOutcome> {
    throw std::runtime_error("boom");
    co_return UnaryOutcome::success({});
  });
  run_coro(p.ctx, [&]() -> asio::awaitable<void> {
    const Bytes req{1};
    auto r = co_await call_unary(*p.client.host, p.server.host->id(), "Test.rpc_fail", req);
    CO_ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->is_error);
    EXPECT_NE(r->error.find("boom"), std::string::npos);
  });
}

// Oversized and malformed envelopes close the stream; the server keeps answering others.
TEST(HivemindRpc, BadEnvelopesCloseStreamAndServerKeepsServing) {
  Pair p;
  p.connect();
  auto server = RpcServer::create(p.server.host);
  server->add_unary("Test.rpc_echo",
                    [](const lp::PeerId&, Bytes req) -> asio::awaitable<UnaryOutcome> {
                      co_return UnaryOutcome::success(std::move(req));
                    });
  const std::vector<Bytes> bad = {
      {0x80, 0x80, 0x80, 0x04, 0x00},        // declares 8 MiB > 4 MiB limit
      {0x05, 0xff, 0xff, 0xff, 0xff, 0xff},  // 5 bytes of garbage protobuf
      {0x04, 0x0a, 0x02, 0x00, 0x01},        // callId of 2 bytes, no callUnary
      {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},  // varint overflow
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(to_hex(b));
    run_coro(p.ctx, [&]() -> asio::awaitable<void> {
      std::vector<std::string> protos{"Test.rpc_echo"};
      auto ns = co_await p.client.host->new_stream(p.server.host->id(), protos);
      CO_ASSERT_TRUE(ns.ok());
      (void)co_await ns->stream->write(b);
      Bytes buf(64);
      auto n = co_await ns->stream->read_some(std::span<std::uint8_t>(buf));
      // Reset (error) or EOF, never an answer.
      EXPECT_TRUE(!n.ok() || *n == 0);
    });
  }
  run_coro(p.ctx, [&]() -> asio::awaitable<void> {
    const Bytes req{7, 8};
    auto r = co_await call_unary(*p.client.host, p.server.host->id(), "Test.rpc_echo", req);
    CO_ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->is_error);
    EXPECT_EQ(r->response, (Bytes{7, 8}));
  });
}

// A request larger than the 4 MiB envelope is refused by the caller before sending.
TEST(HivemindRpc, CallerRefusesOversizedRequest) {
  Pair p;
  p.connect();
  run_coro(p.ctx, [&]() -> asio::awaitable<void> {
    Bytes big(kUnaryMaxMessageBytes + 1);
    auto r = co_await call_unary(*p.client.host, p.server.host->id(), "Test.rpc_echo", big);
    CO_ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, lp::Errc::kTooLarge);
  });
}

// With a cap of 2 concurrent calls per peer, 5 simultaneous slow calls: 2 answered, 3 refused.
TEST(HivemindRpc, PerPeerConcurrencyCap) {
  Pair p;
  p.connect();
  RpcLimits limits;
  limits.max_inbound_per_peer = 2;
  auto server = RpcServer::create(p.server.host, limits);
  std::size_t max_seen = 0;
  server->add_unary(
      "Test.rpc_slow", [&](const lp::PeerId& caller, Bytes req) -> asio::awaitable<UnaryOutcome> {
        max_seen = std::max(max_seen, server->in_flight(caller));
        co_await sleep_for(std::chrono::milliseconds(1500));  // all 5 arrive meanwhile
        co_return UnaryOutcome::success(std::move(req));
      });
  int ok = 0, refused = 0, done = 0;
  run_coro(p.ctx, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    lp::Event finished(ex);
    for (int i = 0; i < 5; ++i)
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            const Bytes req{1};
            auto r = co_await call_unary(*p.client.host, p.server.host->id(), "Test.rpc_slow", req);
            (r.ok() && !r->is_error ? ok : refused)++;
            ++done;
            finished.notify();
          },
          asio::detached);
    while (done < 5) co_await finished.wait();
  });
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(refused, 3);
  EXPECT_EQ(max_seen, 2u);
  EXPECT_EQ(server->in_flight(p.client.host->id()), 0u);
}

// A call that gets no answer ends with kTimeout after its deadline.
TEST(HivemindRpc, CallTimesOut) {
  Pair p;
  p.connect();
  auto server = RpcServer::create(p.server.host);
  server->add_unary("Test.rpc_never",
                    [](const lp::PeerId&, Bytes) -> asio::awaitable<UnaryOutcome> {
                      co_await sleep_for(std::chrono::milliseconds(3000));
                      co_return UnaryOutcome::success({});
                    });
  run_coro(p.ctx, [&]() -> asio::awaitable<void> {
    CallOptions opt;
    opt.timeout = std::chrono::milliseconds(200);
    const Bytes req;
    auto r = co_await call_unary(*p.client.host, p.server.host->id(), "Test.rpc_never", req, opt);
    CO_ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, lp::Errc::kTimeout);
  });
}

// Streaming: requests until END_OF_STREAM, responses until EOF; a handler error arrives as an
// error frame.
TEST(HivemindRpc, StreamingEchoAndErrorFrame) {
  Pair p;
  p.connect();
  auto server = RpcServer::create(p.server.host);
  server->add_stream("Test.rpc_double",
                     [](const lp::PeerId&, FramedStream& fs) -> asio::awaitable<void> {
                       std::vector<Bytes> got;
                       for (;;) {
                         auto f = co_await fs.read();
                         if (!f.ok() || !*f || (*f)->marker == FrameMarker::error) break;
                         got.push_back((*f)->payload);
                       }
                       for (const auto& g : got) {
                         (void)co_await fs.write_message(g);
                         (void)co_await fs.write_message(g);
                       }
                     });
  server->add_stream("Test.rpc_raise",
                     [](const lp::PeerId&, FramedStream&) -> asio::awaitable<void> {
                       throw std::runtime_error("no such block");
                       co_return;
                     });
  run_coro(p.ctx, [&]() -> asio::awaitable<void> {
    const std::vector<Bytes> reqs{Bytes{1}, Bytes{2, 3}};
    auto r = co_await call_stream(*p.client.host, p.server.host->id(), "Test.rpc_double", reqs);
    CO_ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, (std::vector<Bytes>{{1}, {1}, {2, 3}, {2, 3}}));
    const std::vector<Bytes> one{Bytes{1}};
    auto e = co_await call_stream(*p.client.host, p.server.host->id(), "Test.rpc_raise", one);
    CO_ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("no such block"), std::string::npos);
  });
}

}  // namespace
}  // namespace kwaai::p2p::hivemind::net::test
