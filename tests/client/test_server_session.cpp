// ServerSession against a scripted rpc_inference peer: the Petals request it sends (metadata
// keys per step, tensors) and how it survives a server that stalls, errs or sends garbage.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <ostream>

#include "cli/client/server_session.hpp"
#include "p2p/hivemind/framing.hpp"
#include "p2p/hivemind/tensor.hpp"
#include "p2p/libp2p/host/node.hpp"
#include "p2p/petals/metadata.hpp"

namespace kwaai::client {
namespace {

namespace hm = kwaai::p2p::hivemind;
namespace petals = kwaai::p2p::petals;

enum class Mode { echo, silent, error_frame, wrong_shape, garbage };

struct Seen {
  std::vector<petals::RequestMetadata> meta;
  std::vector<hm::pb::ExpertRequest> requests;
  bool got_end = false;
};

// Runs `body` on a fresh pair of hosts (a scripted server, a client connected to it).
template <class Body>
void with_peer(Mode mode, Seen& seen, Body body) {
  asio::io_context ctx;
  auto server = lp::Libp2pNode::create(ctx.get_executor(), lp::PrivateKey::generate_ed25519());
  auto client = lp::Libp2pNode::create(ctx.get_executor(), lp::PrivateKey::generate_ed25519());
  ASSERT_TRUE(server.host->listen(*lp::Multiaddr::from_string("/ip4/127.0.0.1/tcp/0")));
  auto rpc = net::RpcServer::create(server.host);
  rpc->add_stream(
      kRpcInference,
      [&seen, mode](const lp::PeerId&, net::FramedStream& s) -> asio::awaitable<void> {
        for (;;) {
          auto f = co_await s.read();
          if (!f || !*f) co_return;
          if ((*f)->marker == hm::FrameMarker::error) {
            seen.got_end = true;
            continue;
          }
          hm::pb::ExpertRequest req;
          if (!req.ParseFromArray((*f)->payload.data(), static_cast<int>((*f)->payload.size())))
            co_return;
          if (req.tensors_size() == 0) continue;  // the client's closing request
          auto m = petals::parse_request_metadata(hm::ByteView(
              reinterpret_cast<const std::uint8_t*>(req.metadata().data()), req.metadata().size()));
          if (m) seen.meta.push_back(*m);
          seen.requests.push_back(req);
          hm::pb::ExpertResponse resp;
          switch (mode) {
            case Mode::silent:
              continue;
            case Mode::error_frame:
              (void)co_await s.write_error("Maximum length exceeded: scripted");
              co_return;
            case Mode::garbage: {
              const hm::Bytes junk{0xff, 0xff, 0xff, 0x01};
              (void)co_await s.write_message(junk);
              continue;
            }
            case Mode::wrong_shape: {
              // As many values as asked for, in another shape: [1, 2, 1] for [1, 1, 2].
              auto t = hm::serialize_tensor(hm::HostTensor::from_floats({1, 2, 1}, {1.f, 2.f}),
                                            hm::pb::NONE);
              *resp.add_tensors() = *t;
              break;
            }
            case Mode::echo:
              *resp.add_tensors() = req.tensors(0);
              break;
          }
          std::string out;
          resp.SerializeToString(&out);
          const hm::Bytes bytes(out.begin(), out.end());  // named: outlives the co_await
          (void)co_await s.write_message(bytes);
        }
      });
  const auto addr = server.host->listen_addrs().at(0).with_peer_id(server.host->id());
  bool done = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto c = co_await client.host->connect(addr);
        EXPECT_TRUE(c);
        if (c) co_await body(*client.host, server.host->id().to_base58());
        co_await client.host->close();
        co_await server.host->close();
        done = true;
      },
      asio::detached);
  while (!done) ctx.run_one();
}

SessionTimeouts quick() {
  SessionTimeouts t;
  t.connect = std::chrono::milliseconds(2000);
  t.step = std::chrono::milliseconds(300);
  t.close = std::chrono::milliseconds(300);
  return t;
}

TEST(ClientServerSession, StepsCarryPetalsMetadataAndTensors) {
  Seen seen;
  with_peer(Mode::echo, seen, [&](lp::Host& host, std::string peer) -> asio::awaitable<void> {
    // Named, not braced inside co_await: GCC 12 mis-handles initializer lists there.
    const RemoteSpan span{peer, 3, 5, {}};
    auto s = co_await ServerSession::open(host, span, "m-hf", 16, quick());
    EXPECT_TRUE(s);
    if (!s) co_return;
    (*s)->set_active_adapter("lora-x");
    const std::vector<float> prompt{0.5f, -1.f, 2.f, 4.f, 0.25f, 8.f};  // [1, 3, 2]
    auto a = co_await (*s)->step(prompt, 1, 3, 2);
    EXPECT_TRUE(a);
    if (a) EXPECT_EQ(*a, prompt);
    const std::vector<float> next{1.f, 2.f};
    auto b = co_await (*s)->step(next, 1, 1, 2);
    EXPECT_TRUE(b);
    EXPECT_EQ((*s)->position(), 4);
    co_await (*s)->close();
  });
  ASSERT_EQ(seen.meta.size(), 2u);
  const auto& first = seen.meta[0];
  const auto& second = seen.meta[1];
  EXPECT_EQ(seen.requests[0].uid(), "m-hf.3 m-hf.4");
  EXPECT_EQ(first.max_length, 16);  // only on the first step
  EXPECT_EQ(first.active_adapter, "lora-x");
  EXPECT_FALSE(second.max_length.has_value());
  EXPECT_EQ(first.session_id, second.session_id);
  EXPECT_NE(first.step_id, second.step_id);
  EXPECT_EQ(first.start_from_position, 0);
  EXPECT_EQ(second.start_from_position, 3);
  // hidden_states, the prompts dummy, the int64 hypo_ids dummy.
  ASSERT_EQ(seen.requests[1].tensors_size(), 3);
  EXPECT_EQ(seen.requests[1].tensors(1).size_size(), 1);
  EXPECT_EQ(seen.requests[1].tensors(1).size(0), 0u);
  EXPECT_EQ(seen.requests[1].tensors(2).dtype(), "int64");
  EXPECT_TRUE(seen.got_end);  // close() sent END_OF_STREAM
}

TEST(ClientServerSession, Bfloat16WireFormatSendsRawTwoByteValues) {
  Seen seen;
  with_peer(Mode::echo, seen, [&](lp::Host& host, std::string peer) -> asio::awaitable<void> {
    const RemoteSpan span{peer, 0, 1, {}};
    auto s = co_await ServerSession::open(host, span, "m-hf", 4, quick());
    EXPECT_TRUE(s);
    if (!s) co_return;
    (*s)->set_wire_format({hm::DType::bfloat16, hm::pb::NONE});
    const std::vector<float> x{1.0f, 3.0f};  // exact in bf16
    auto a = co_await (*s)->step(x, 1, 1, 2);
    EXPECT_TRUE(a);
    if (a) EXPECT_EQ(*a, (std::vector<float>{1.0f, 3.0f}));
    co_await (*s)->close();
  });
  ASSERT_EQ(seen.requests.size(), 1u);
  EXPECT_EQ(seen.requests[0].tensors(0).dtype(), "bfloat16");
  EXPECT_EQ(seen.requests[0].tensors(0).buffer().size(), 4u);
  EXPECT_EQ(seen.requests[0].tensors(1).dtype(), "bfloat16");
}

struct BadCase {
  Mode mode;
  lp::Errc code;
  const char* text;
};

// Readable in test names and failures (gtest would otherwise dump the struct's bytes).
void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.text;
}

class ClientServerSessionFailures : public ::testing::TestWithParam<BadCase> {};

TEST_P(ClientServerSessionFailures, AMisbehavingServerGivesAnErrorAndABrokenSession) {
  Seen seen;
  const BadCase c = GetParam();
  with_peer(c.mode, seen, [&](lp::Host& host, std::string peer) -> asio::awaitable<void> {
    const RemoteSpan span{peer, 0, 2, {}};
    auto s = co_await ServerSession::open(host, span, "m-hf", 8, quick());
    EXPECT_TRUE(s);
    if (!s) co_return;
    const std::vector<float> x{1.f, 2.f};
    auto r = co_await (*s)->step(x, 1, 1, 2);
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_EQ(r.error().code, c.code) << r.error().to_string();
      EXPECT_NE(r.error().to_string().find(c.text), std::string::npos) << r.error().to_string();
      EXPECT_NE(r.error().to_string().find(peer), std::string::npos);
    }
    EXPECT_TRUE((*s)->broken());
    auto again = co_await (*s)->step(x, 1, 1, 2);
    EXPECT_FALSE(again);
    co_await (*s)->close();
  });
}

INSTANTIATE_TEST_SUITE_P(
    Modes, ClientServerSessionFailures,
    ::testing::Values(BadCase{Mode::silent, lp::Errc::kTimeout, "no answer within 300 ms"},
                      BadCase{Mode::error_frame, lp::Errc::kProtocol, "Maximum length exceeded"},
                      BadCase{Mode::wrong_shape, lp::Errc::kProtocol, "wrong shape"},
                      BadCase{Mode::garbage, lp::Errc::kMalformed, "undecodable"}));

TEST(ClientServerSession, AnUnreachablePeerFailsToOpen) {
  Seen seen;
  with_peer(Mode::echo, seen, [&](lp::Host& host, std::string) -> asio::awaitable<void> {
    // A valid peer id nobody listens for: no address known, the dial fails.
    const std::string stranger =
        lp::PeerId::from_public_key(lp::PrivateKey::generate_ed25519().public_key()).to_base58();
    const RemoteSpan nobody{stranger, 0, 1, {}}, junk{"not-a-peer-id", 0, 1, {}};
    auto s = co_await ServerSession::open(host, nobody, "m-hf", 4, quick());
    EXPECT_FALSE(s);
    auto bad = co_await ServerSession::open(host, junk, "m-hf", 4, quick());
    EXPECT_FALSE(bad);
  });
}

}  // namespace
}  // namespace kwaai::client
