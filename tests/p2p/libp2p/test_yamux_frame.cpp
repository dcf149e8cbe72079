// Yamux header codec against the frame table in the wire spec.
#include <gtest/gtest.h>

#include "p2p/libp2p/yamux_frame.hpp"
#include "tests/p2p/libp2p/test_util.hpp"

namespace kwaai::p2p::libp2p::yamux {
namespace {
using test::hex;

TEST(YamuxFrame, EncodesSpecVectors) {
  auto h = [](const Header& x) { return to_hex(encode_header(x)); };
  EXPECT_EQ(h(window_update(1, 0, flags::kSyn)), "000100010000000100000000");
  EXPECT_EQ(h(window_update(2, 0, flags::kAck)), "000100020000000200000000");
  EXPECT_EQ(h(data(1, 0, flags::kFin)), "000000040000000100000000");
  EXPECT_EQ(h(window_update(3, 0, flags::kRst)), "000100080000000300000000");
  EXPECT_EQ(h(ping(7, false)), "000200010000000000000007");
  EXPECT_EQ(h(ping(7, true)), "000200020000000000000007");
  EXPECT_EQ(h(go_away(GoAwayCode::kNormal)), "000300000000000000000000");
  EXPECT_EQ(h(data(0x01020304, 0x00040000)), "000000000102030400040000");
}

TEST(YamuxFrame, DecodeRoundTripsRandomValidHeaders) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 1000; ++i) {
    Header x;
    x.type = static_cast<FrameType>(rng() % 4);
    x.flags = static_cast<std::uint16_t>(rng() & flags::kAll);
    const bool session = x.type == FrameType::kPing || x.type == FrameType::kGoAway;
    x.stream_id = session ? 0 : static_cast<std::uint32_t>(1 + rng() % 0xfffffffe);
    x.length = static_cast<std::uint32_t>(rng());
    Bytes b;
    append_header(x, b);
    b.push_back(0xee);  // trailing payload byte is not read
    auto d = decode_header(b);
    ASSERT_TRUE(d.ok()) << test::err(d);
    EXPECT_EQ(*d, x);
  }
}

TEST(YamuxFrame, RejectsInvalidHeaders) {
  EXPECT_EQ(decode_header(hex("0001000100000001000000")).error().code, Errc::kTruncated);
  EXPECT_EQ(decode_header(hex("010100010000000100000000")).error().code, Errc::kProtocol);  // v1
  EXPECT_EQ(decode_header(hex("000400000000000100000000")).error().code,
            Errc::kProtocol);  // type 4
  EXPECT_EQ(decode_header(hex("000000100000000100000000")).error().code,
            Errc::kProtocol);  // flag 0x10
  EXPECT_EQ(decode_header(hex("000200010000000100000007")).error().code,
            Errc::kProtocol);  // ping sid 1
  EXPECT_EQ(decode_header(hex("000000000000000000000001")).error().code,
            Errc::kProtocol);  // data sid 0
}

TEST(YamuxFrame, ConstantsMatchGoAndJs) {
  EXPECT_EQ(kInitialWindow, 262144u);
  EXPECT_EQ(kMaxWindow, 16u * 1024 * 1024);
  EXPECT_TRUE(is_client_stream(1));
  EXPECT_FALSE(is_client_stream(2));
  EXPECT_TRUE(ping(1, false).has(flags::kSyn));
}

}  // namespace
}  // namespace kwaai::p2p::libp2p::yamux
