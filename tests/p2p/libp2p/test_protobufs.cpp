// Identify / kad / key protobufs and delimited framing: exact field numbers and limits.
#include <gtest/gtest.h>

#include "p2p/libp2p/delimited.hpp"
#include "p2p/libp2p/multiaddr.hpp"
#include "p2p/libp2p/proto/crypto.pb.h"
#include "p2p/libp2p/proto/dht.pb.h"
#include "p2p/libp2p/proto/identify.pb.h"
#include "tests/p2p/libp2p/test_util.hpp"

namespace kwaai::p2p::libp2p {
namespace {
using test::hex;

TEST(Protobufs, IdentifyUsesWireFieldNumbers) {
  pb::Identify id;
  id.set_publickey(std::string("\x08\x01", 2));
  id.add_listenaddrs(std::string("\x04\x7f\x00\x00\x01", 5));
  id.add_protocols("/ipfs/id/1.0.0");
  id.set_observedaddr(std::string("\x06\x0f\xa1", 3));
  id.set_protocolversion("ipfs/0.1.0");
  id.set_agentversion("kwaainet");
  id.set_signedpeerrecord("r");
  const Bytes b = serialize(id);
  // Tags: 1→0a, 2→12, 3→1a, 4→22, 5→2a, 6→32, 8→42 (serialized in field-number order).
  EXPECT_EQ(to_hex(b),
            "0a0208011205047f0000011a0e2f697066732f69642f312e302e302203060fa1"
            "2a0a697066732f302e312e3032086b776161696e6574420172");
  pb::Identify back;
  ASSERT_TRUE(parse(b, back, kIdentifyMaxMessage).ok());
  EXPECT_EQ(back.agentversion(), "kwaainet");
  EXPECT_EQ(parse(Bytes(kIdentifyMaxMessage + 1), back, kIdentifyMaxMessage).error().code,
            Errc::kTooLarge);
}

TEST(Protobufs, KadFindNodeUsesWireFieldNumbers) {
  auto ma = Multiaddr::from_string("/ip4/127.0.0.1/tcp/4001");
  pb::Message m;
  m.set_type(pb::Message::FIND_NODE);
  m.set_key(std::string("\x00\x01", 2));
  auto* p = m.add_closerpeers();
  p->set_id("id");
  const Bytes addr = ma->to_bytes();
  p->add_addrs(std::string(addr.begin(), addr.end()));
  p->set_connection(pb::Message::CONNECTED);
  m.set_clusterlevelraw(0);
  const Bytes b = serialize(m);
  // type(1)=4 → 0804; key(2) → 12020001; closerPeers(8) → 42 {0a 02 "id", 12 08 addr, 18 01}
  EXPECT_EQ(to_hex(b),
            "0804120200014210"
            "0a026964"
            "1208047f000001060fa1"
            "1801");
  pb::Message back;
  ASSERT_TRUE(parse(b, back, kKadMaxMessage).ok());
  EXPECT_EQ(back.closerpeers(0).addrs(0), std::string(addr.begin(), addr.end()));
}

TEST(Protobufs, KeyProtoRequiresBothFields) {
  pb::PublicKey k;
  EXPECT_FALSE(parse(hex("0801"), k, 100).ok());  // proto2 required Data missing
  EXPECT_TRUE(parse(hex("08011200"), k, 100).ok());
  EXPECT_EQ(parse(hex("ffff"), k, 100).error().code, Errc::kMalformed);
}

TEST(Delimited, FramesAndLimits) {
  EXPECT_EQ(encode_delimited(hex("aabb")), hex("02aabb"));
  const Bytes in = hex("02aabbcc");  // the view returned points into `in`
  auto d = decode_delimited(in, 10);
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ(Bytes((*d)->body.begin(), (*d)->body.end()), hex("aabb"));
  EXPECT_EQ((*d)->size, 3u);
  EXPECT_FALSE(decode_delimited(hex("02aa"), 10)->has_value());
  EXPECT_FALSE(decode_delimited(hex("80"), 10)->has_value());
  // The limit is enforced from the prefix alone, before the body arrives.
  EXPECT_EQ(decode_delimited(hex("808001"), 1000).error().code, Errc::kTooLarge);
  EXPECT_EQ(decode_delimited(hex("8000"), 1000).error().code, Errc::kMalformed);

  DelimitedReader r(16);
  r.feed(hex("0301"));
  ASSERT_TRUE(r.next().ok());
  r.feed(hex("020300"));
  auto a = r.next();
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ(**a, hex("010203"));
  auto b = r.next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_TRUE((*b)->empty());
  r.feed(hex("11"));
  EXPECT_EQ(r.next().error().code, Errc::kTooLarge);
}

TEST(Delimited, SerializeDelimitedMatchesManualFraming) {
  pb::Identify id;
  id.set_agentversion("x");
  EXPECT_EQ(serialize_delimited(id), encode_delimited(serialize(id)));
}

}  // namespace
}  // namespace kwaai::p2p::libp2p
