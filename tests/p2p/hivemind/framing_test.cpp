// Unary envelopes and stream frames against dht_rpc.json (wire_tap, python_daemon_envelopes) and
// petals_rpc.json (stream frames, error frame, END_OF_STREAM, rpc_info envelope).
#include <random>

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/hivemind/framing.hpp"
#include "p2p/hivemind/proto/p2pd.pb.h"
#include "vectors.hpp"

namespace kwaai::p2p::hivemind {
namespace {

using testing::hex;
using testing::json;

// Splits a delimited message off the front, returning its body.
Bytes body_of(const Bytes& wire) {
  DelimitedDecoder d;
  d.feed(wire);
  auto m = d.next();
  EXPECT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ(d.buffered(), 0u);
  return m.ok() && m->has_value() ? **m : Bytes{};
}

TEST(HivemindFraming, WireTapUnaryCallsDecodeAndReencodeByteIdentically) {
  const json v = testing::load_vectors("dht_rpc.json");
  ASSERT_GE(v["wire_tap"]["calls"].size(), 4u);
  bool saw_error = false;
  for (const auto& c : v["wire_tap"]["calls"]) {
    SCOPED_TRACE(c["proto"].get<std::string>());
    const Bytes req_wire = hex(c["request_wire_hex"]);
    auto call = parse_unary_call(body_of(req_wire));
    ASSERT_TRUE(call.ok()) << call.error().what();
    const json& m = c["request_decoded"]["message"];
    EXPECT_EQ(to_hex(call->call_id), m["callId"]["$bytes"].get<std::string>());
    EXPECT_EQ(call->proto, c["proto"].get<std::string>());
    EXPECT_EQ(to_hex(call->peer), m["callUnary"]["peer"]["$bytes"].get<std::string>());
    EXPECT_EQ(to_hex(call->data), m["callUnary"]["data"]["$bytes"].get<std::string>());
    EXPECT_EQ(to_hex(*encode_unary_call(*call)), c["request_wire_hex"].get<std::string>());

    const Bytes resp_wire = hex(c["response_wire_hex"]);
    auto reply = parse_unary_reply(body_of(resp_wire));
    ASSERT_TRUE(reply.ok()) << reply.error().what();
    EXPECT_EQ(reply->call_id, call->call_id);
    const json& ur = c["response_decoded"]["message"]["unaryResponse"];
    if (ur.contains("error")) {
      saw_error = true;
      EXPECT_TRUE(reply->is_error);
      EXPECT_EQ(to_string(reply->payload), "AssertionError()");
    } else {
      EXPECT_FALSE(reply->is_error);
      EXPECT_EQ(to_hex(reply->payload), ur["response"]["$bytes"].get<std::string>());
    }
    EXPECT_EQ(to_hex(*encode_unary_reply(*reply)), c["response_wire_hex"].get<std::string>());
  }
  EXPECT_TRUE(saw_error);
}

TEST(HivemindFraming, PythonDaemonEnvelopesRoundTrip) {
  const json v = testing::load_vectors("dht_rpc.json");
  for (const auto& env : v["python_daemon_envelopes"]) {
    SCOPED_TRACE(env["name"].get<std::string>());
    for (const char* step : {"1_caller_python_to_caller_p2pd", "3_callee_python_to_callee_p2pd"}) {
      for (const auto& msg : env[step]) {
        const Bytes wire = hex(msg["bytes_hex"]);
        const Bytes body = body_of(wire);
        auto call = parse_unary_call(body);
        if (call.ok()) {
          EXPECT_EQ(to_hex(*encode_unary_call(*call)), msg["bytes_hex"].get<std::string>());
        } else {
          auto reply = parse_unary_reply(body);
          ASSERT_TRUE(reply.ok()) << reply.error().what();
          EXPECT_EQ(to_hex(*encode_unary_reply(*reply)), msg["bytes_hex"].get<std::string>());
        }
      }
    }
    // The daemon-to-Python messages are PersistentConnectionResponse: parse and re-serialize.
    for (const char* step : {"2_callee_p2pd_to_callee_python", "4_caller_p2pd_to_caller_python"}) {
      for (const auto& msg : env[step]) {
        const Bytes body = body_of(hex(msg["bytes_hex"]));
        auto r = parse_message<pb::PersistentConnectionResponse>(body);
        ASSERT_TRUE(r.ok());
        Bytes again;
        append_uvarint(again, r->ByteSizeLong());
        Bytes s = serialize_message(*r);
        again.insert(again.end(), s.begin(), s.end());
        EXPECT_EQ(to_hex(again), msg["bytes_hex"].get<std::string>());
      }
    }
  }
}

TEST(HivemindFraming, PetalsStreamFramesAndEndOfStream) {
  const json v = testing::load_vectors("petals_rpc.json");
  int frames = 0;
  for (const auto& e : v["entries"]) {
    if (!e.contains("stream_frame_hex")) continue;
    SCOPED_TRACE(e["name"].get<std::string>());
    const Bytes payload = hex(e["bytes_hex"]);
    EXPECT_EQ(to_hex(encode_stream_frame(FrameMarker::message, payload)),
              e["stream_frame_hex"].get<std::string>());
    StreamFrameDecoder d;
    d.feed(hex(e["stream_frame_hex"]));
    auto f = d.next();
    ASSERT_TRUE(f.ok() && f->has_value());
    EXPECT_EQ((*f)->marker, FrameMarker::message);
    EXPECT_EQ((*f)->payload, payload);
    if (e.contains("end_of_stream_frame_hex")) {
      EXPECT_EQ(to_hex(end_of_stream_frame()), e["end_of_stream_frame_hex"].get<std::string>());
      d.feed(end_of_stream_frame());
      auto eos = d.next();
      ASSERT_TRUE(eos.ok() && eos->has_value());
      EXPECT_EQ((*eos)->marker, FrameMarker::error);
      EXPECT_EQ(*parse_rpc_error((*eos)->payload), "");
    }
    ++frames;
  }
  EXPECT_GE(frames, 5);
}

TEST(HivemindFraming, ErrorFrameAndRpcInfoEnvelopeMatchPetalsVectors) {
  const json v = testing::load_vectors("petals_rpc.json");
  for (const auto& e : v["entries"]) {
    const std::string name = e["name"].get<std::string>();
    if (name == "stream error frame") {
      const std::string msg = e["input"]["message"].get<std::string>();
      EXPECT_EQ(to_hex(encode_error_frame(msg)), e["bytes_hex"].get<std::string>());
      StreamFrameDecoder d;
      d.feed(hex(e["bytes_hex"]));
      auto f = d.next();
      ASSERT_TRUE(f.ok() && f->has_value());
      EXPECT_EQ((*f)->marker, FrameMarker::error);
      EXPECT_EQ(*parse_rpc_error((*f)->payload), msg);
    }
    if (name.rfind("unary envelope", 0) == 0) {
      auto call = parse_unary_call(body_of(hex(e["bytes_hex"])));
      ASSERT_TRUE(call.ok());
      EXPECT_EQ(call->proto, e["input"]["proto"].get<std::string>());
      EXPECT_EQ(to_hex(call->call_id), e["input"]["callId_hex"].get<std::string>());
      EXPECT_EQ(to_hex(*encode_unary_call(*call)), e["bytes_hex"].get<std::string>());
    }
  }
}

TEST(HivemindFraming, SpecPingExampleEnvelope) {
  UnaryCall call;
  for (int i = 0; i < 16; ++i) call.call_id.push_back(static_cast<std::uint8_t>(i));
  call.peer = {0x12, 0x20};
  call.peer.resize(34, 0);
  call.proto = "DHTProtocol.rpc_ping";
  call.data = serialize_message(make_ping_request(DHTID(), true));
  auto wire = encode_unary_call(call);
  ASSERT_TRUE(wire.ok());
  EXPECT_EQ(wire->size(), 107u);
  EXPECT_EQ((*wire)[0], 0x6a);
  EXPECT_EQ(to_hex(call.data), "12160a14" + std::string(40, '0') + "1801");
  UnaryReply err{call.call_id, true, to_bytes("ValueError('x')")};
  Bytes body = body_of(*encode_unary_reply(err));
  EXPECT_EQ(to_hex(body),
            "0a10000102030405060708090a0b0c0d0e0f2211120f" + to_hex(as_bytes("ValueError('x')")));
}

TEST(HivemindFraming, DecodersHandleArbitraryFragmentation) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Bytes stream;
  std::vector<Bytes> payloads;
  for (int i = 0; i < 50; ++i) {
    Bytes p(rng() % 3000, static_cast<std::uint8_t>(i));
    payloads.push_back(p);
    auto f = encode_stream_frame(i % 7 ? FrameMarker::message : FrameMarker::error, p);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  StreamFrameDecoder d;
  std::size_t got = 0;
  for (std::size_t off = 0; off < stream.size();) {
    std::size_t n = std::min<std::size_t>(1 + rng() % 700, stream.size() - off);
    d.feed(ByteView(stream.data() + off, n));
    off += n;
    for (;;) {
      auto f = d.next();
      ASSERT_TRUE(f.ok());
      if (!f->has_value()) break;
      EXPECT_EQ((*f)->payload, payloads[got]);
      EXPECT_EQ((*f)->marker, got % 7 ? FrameMarker::message : FrameMarker::error);
      ++got;
    }
  }
  EXPECT_EQ(got, payloads.size());
}

TEST(HivemindFraming, LimitsAndMalformedInputAreTypedErrors) {
  StreamFrameDecoder small(100);
  Bytes big = encode_stream_frame(FrameMarker::message, Bytes(101, 0));
  small.feed(big);
  auto r = small.next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::too_large);
  EXPECT_FALSE(small.next().ok());  // stays failed

  StreamFrameDecoder bad;
  bad.feed(Bytes{0x02, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(bad.next().error().code, Errc::malformed);

  DelimitedDecoder unary;
  Bytes huge;
  append_uvarint(huge, kUnaryMaxMessageBytes + 1);
  unary.feed(huge);
  EXPECT_EQ(unary.next().error().code, Errc::too_large);

  UnaryCall call{Bytes(16, 1), Bytes(34, 2), "x", Bytes(kUnaryMaxMessageBytes, 0)};
  EXPECT_EQ(encode_unary_call(call).error().code, Errc::too_large);
  call.call_id.resize(15);
  call.data.clear();
  EXPECT_FALSE(encode_unary_call(call).ok());

  // callId of the wrong length and missing required fields are rejected on parse.
  pb::PersistentConnectionRequest req;
  req.set_callid("short");
  req.mutable_callunary()->set_peer("p");
  req.mutable_callunary()->set_proto("x");
  req.mutable_callunary()->set_data("");
  EXPECT_FALSE(parse_unary_call(serialize_message(req)).ok());
  req.set_callid(std::string(16, 'a'));
  EXPECT_TRUE(parse_unary_call(serialize_message(req)).ok());
  EXPECT_FALSE(parse_unary_reply(serialize_message(req)).ok());  // a call is not a reply
  Bytes truncated = serialize_message(req);
  truncated.pop_back();
  EXPECT_FALSE(parse_unary_call(truncated).ok());
}

}  // namespace
}  // namespace kwaai::p2p::hivemind
