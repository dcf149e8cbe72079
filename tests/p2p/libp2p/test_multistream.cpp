// multistream-select: framing vectors from the spec, negotiation incl. pipelining and `na`.
#include <gtest/gtest.h>

#include "p2p/libp2p/multistream.hpp"
#include "tests/p2p/libp2p/test_util.hpp"

namespace kwaai::p2p::libp2p::multistream {
namespace {
using test::hex;

TEST(MultistreamCodec, EncodesSpecVectors) {
  EXPECT_EQ(to_hex(encode_message("/multistream/1.0.0")),
            "132f6d756c746973747265616d2f312e302e300a");
  EXPECT_EQ(to_hex(encode_message("/noise")), "072f6e6f6973650a");
  EXPECT_EQ(to_hex(encode_message("/tls/1.0.0")), "0b2f746c732f312e302e300a");
  EXPECT_EQ(to_hex(encode_message("/yamux/1.0.0")), "0d2f79616d75782f312e302e300a");
  EXPECT_EQ(to_hex(encode_message("/ipfs/id/1.0.0")), "0f2f697066732f69642f312e302e300a");
  EXPECT_EQ(to_hex(encode_message("/ipfs/ping/1.0.0")), "112f697066732f70696e672f312e302e300a");
  EXPECT_EQ(to_hex(encode_message("na")), "036e610a");
  EXPECT_EQ(to_hex(encode_message("ls")), "036c730a");
}

TEST(MultistreamCodec, DecodesIncrementallyAndRejectsBadMessages) {
  const Bytes m = encode_message("/yamux/1.0.0");
  for (std::size_t cut = 0; cut < m.size(); ++cut) {
    auto r = decode_message(ByteView(m).first(cut));
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->has_value()) << "cut=" << cut;
  }
  auto full = decode_message(m);
  ASSERT_TRUE(full.ok() && full->has_value());
  EXPECT_EQ((*full)->text, "/yamux/1.0.0");
  EXPECT_EQ((*full)->size, m.size());

  EXPECT_EQ(decode_message(hex("036e6178")).error().code, Errc::kMalformed);  // no '\n'
  EXPECT_EQ(decode_message(hex("00")).error().code, Errc::kMalformed);        // empty
  EXPECT_EQ(decode_message(hex("036e0a0a")).error().code, Errc::kMalformed);  // inner '\n'
  EXPECT_EQ(decode_message(hex("8108")).error().code, Errc::kTooLarge);       // 1025 > 1024
  Bytes out;
  EXPECT_EQ(encode_message(std::string(1024, 'a'), out).error().code, Errc::kTooLarge);
  EXPECT_TRUE(encode_message(std::string(1023, 'a'), out).ok());
  EXPECT_EQ(encode_message("a\nb", out).error().code, Errc::kMalformed);
}

TEST(MultistreamCodec, LsResponseRoundTrips) {
  const std::vector<std::string> protos{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"};
  const Bytes b = encode_ls_response(protos);
  auto d = decode_ls_response(b);
  ASSERT_TRUE(d.ok()) << test::err(d);
  EXPECT_EQ(*d, protos);
  EXPECT_FALSE(decode_ls_response(ByteView(b).first(b.size() - 1)).ok());
}

// Feeds `bytes` to the other side in chunks of `step` and collects its output.
template <class Side>
Result<Progress> feed_in_chunks(Side& side, const Bytes& bytes, std::size_t step) {
  Progress total;
  for (std::size_t off = 0; off < bytes.size(); off += step) {
    auto p = side.on_data(ByteView(bytes).subspan(off, std::min(step, bytes.size() - off)));
    if (!p) return p;
    append(total.to_send, p->to_send);
    if (p->done) {
      total.done = true;
      total.selected = p->selected;
      total.leftover = p->leftover;
      append(total.leftover, ByteView(bytes).subspan(std::min(off + step, bytes.size())));
      break;
    }
  }
  return total;
}

TEST(MultistreamNegotiation, InitiatorAndResponderAgreeAfterNa) {
  for (std::size_t step : {1u, 3u, 1000u}) {
    SCOPED_TRACE("chunk=" + std::to_string(step));
    Initiator ini({"/tls/1.0.0", "/noise"});
    Responder resp(std::vector<std::string>{"/noise"});
    auto first = ini.start();
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->to_send, [] {
      Bytes b = encode_message("/multistream/1.0.0");
      append(b, encode_message("/tls/1.0.0"));
      return b;
    }());
    auto r1 = feed_in_chunks(resp, first->to_send, step);
    ASSERT_TRUE(r1.ok()) << test::err(r1);
    EXPECT_FALSE(r1->done);
    Bytes expect = encode_message("/multistream/1.0.0");
    append(expect, encode_message("na"));
    EXPECT_EQ(r1->to_send, expect);
    auto i1 = feed_in_chunks(ini, r1->to_send, step);
    ASSERT_TRUE(i1.ok()) << test::err(i1);
    EXPECT_EQ(i1->to_send, encode_message("/noise"));
    auto r2 = feed_in_chunks(resp, i1->to_send, step);
    ASSERT_TRUE(r2.ok() && r2->done);
    EXPECT_EQ(r2->selected, "/noise");
    auto i2 = feed_in_chunks(ini, r2->to_send, step);
    ASSERT_TRUE(i2.ok() && i2->done);
    EXPECT_EQ(i2->selected, "/noise");
    EXPECT_TRUE(i2->leftover.empty());
  }
}

TEST(MultistreamNegotiation, ResponderKeepsPipelinedDataOfLazyDialer) {
  // go's lazy select: header ‖ proto ‖ application bytes, before any reply.
  Bytes wire = encode_message("/multistream/1.0.0");
  append(wire, encode_message("/ipfs/ping/1.0.0"));
  const Bytes payload = hex("00112233445566778899");
  append(wire, payload);
  Responder resp(std::vector<std::string>{"/ipfs/ping/1.0.0"});
  auto r = resp.on_data(wire);
  ASSERT_TRUE(r.ok() && r->done);
  EXPECT_EQ(r->selected, "/ipfs/ping/1.0.0");
  EXPECT_EQ(r->leftover, payload);
  Bytes expect = encode_message("/multistream/1.0.0");
  append(expect, encode_message("/ipfs/ping/1.0.0"));
  EXPECT_EQ(r->to_send, expect);
  EXPECT_EQ(resp.on_data({}).error().code, Errc::kState);
}

TEST(MultistreamNegotiation, InitiatorKeepsBytesAfterEcho) {
  Initiator ini({"/yamux/1.0.0"});
  ASSERT_TRUE(ini.start().ok());
  Bytes reply = encode_message("/multistream/1.0.0");
  append(reply, encode_message("/yamux/1.0.0"));
  append(reply, hex("000100010000000200000000"));  // a yamux frame right behind
  auto p = ini.on_data(reply);
  ASSERT_TRUE(p.ok() && p->done);
  EXPECT_EQ(p->leftover, hex("000100010000000200000000"));
}

TEST(MultistreamNegotiation, FailsWhenEveryProposalIsRefused) {
  Initiator ini({"/a", "/b"});
  ASSERT_TRUE(ini.start().ok());
  Bytes reply = encode_message("/multistream/1.0.0");
  append(reply, encode_message("na"));
  auto p = ini.on_data(reply);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->to_send, encode_message("/b"));
  EXPECT_EQ(ini.on_data(encode_message("na")).error().code, Errc::kNegotiationFailed);
}

TEST(MultistreamNegotiation, RejectsWrongHeaderAndUnexpectedReply) {
  Responder resp(std::vector<std::string>{"/noise"});
  EXPECT_EQ(resp.on_data(encode_message("/multistream/2.0.0")).error().code, Errc::kProtocol);
  Initiator ini({"/noise"});
  ASSERT_TRUE(ini.start().ok());
  Bytes reply = encode_message("/multistream/1.0.0");
  append(reply, encode_message("/other"));
  EXPECT_EQ(ini.on_data(reply).error().code, Errc::kProtocol);
}

TEST(MultistreamNegotiation, ResponderAnswersLsAndLimitsProposals) {
  Responder resp(std::vector<std::string>{"/x"});
  Bytes wire = encode_message("/multistream/1.0.0");
  append(wire, encode_message("ls"));
  auto r = resp.on_data(wire);
  ASSERT_TRUE(r.ok());
  Bytes expect = encode_message("/multistream/1.0.0");
  append(expect, encode_ls_response({"/x"}));
  EXPECT_EQ(r->to_send, expect);
  Bytes many;
  for (std::size_t i = 0; i < kMaxProposals + 1; ++i) append(many, encode_message("/nope"));
  EXPECT_EQ(resp.on_data(many).error().code, Errc::kTooLarge);
}

}  // namespace
}  // namespace kwaai::p2p::libp2p::multistream
