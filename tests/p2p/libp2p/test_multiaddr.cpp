// Multiaddr text/binary against the js @multiformats/multiaddr vectors in the wire spec.
#include <gtest/gtest.h>

#include "p2p/libp2p/multiaddr.hpp"
#include "tests/p2p/libp2p/test_util.hpp"

namespace kwaai::p2p::libp2p {
namespace {
using test::hex;

struct Vector {
  const char* text;
  const char* hex;
};

const Vector kVectors[] = {
    {"/ip4/127.0.0.1/tcp/4001", "047f000001060fa1"},
    {"/ip4/1.2.3.4/udp/4001/quic-v1", "040102030491020fa1cd03"},
    {"/ip6/::1/tcp/4001", "2900000000000000000000000000000001060fa1"},
    {"/dns4/example.com/tcp/443", "360b6578616d706c652e636f6d0601bb"},
    {"/dns/example.com/tcp/80", "350b6578616d706c652e636f6d060050"},
    {"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
     "047f000001060fa1a503260024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c3"
     "7eb1336b"},
    {"/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit/"
     "p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
     "0401020304060fa1a503260024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37"
     "eb1336ba202a503221220"
     "9dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9"},
};

TEST(Multiaddr, TextAndBinaryMatchJsVectors) {
  for (const auto& v : kVectors) {
    SCOPED_TRACE(v.text);
    auto t = Multiaddr::from_string(v.text);
    ASSERT_TRUE(t.ok()) << test::err(t);
    EXPECT_EQ(to_hex(t->to_bytes()), v.hex);
    auto b = Multiaddr::from_bytes(hex(v.hex));
    ASSERT_TRUE(b.ok()) << test::err(b);
    EXPECT_EQ(b->to_string(), v.text);
    EXPECT_EQ(*b, *t);
  }
}

TEST(Multiaddr, ExtractsTcpEndpointAndPeerId) {
  auto ma = Multiaddr::from_string(
      "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA");
  ASSERT_TRUE(ma.ok());
  auto ep = ma->tcp_endpoint();
  ASSERT_TRUE(ep.ok()) << test::err(ep);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 4001);
  EXPECT_EQ(ep->kind, HostPort::Kind::kIp4);
  ASSERT_TRUE(ma->peer_id().has_value());
  EXPECT_EQ(ma->peer_id()->to_base58(), "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA");
  EXPECT_EQ(ma->without_peer_id().to_string(), "/ip4/127.0.0.1/tcp/4001");
  EXPECT_EQ(ma->without_peer_id().with_peer_id(*ma->peer_id()), *ma);

  auto dns = Multiaddr::from_string("/dns6/node.example/tcp/31337");
  ASSERT_TRUE(dns.ok());
  EXPECT_EQ(dns->tcp_endpoint()->kind, HostPort::Kind::kDns6);
  EXPECT_EQ(dns->tcp_endpoint()->host, "node.example");
  EXPECT_FALSE(dns->peer_id().has_value());

  auto quic = Multiaddr::from_string("/ip4/1.2.3.4/udp/4001/quic-v1");
  EXPECT_EQ(quic->tcp_endpoint().error().code, Errc::kUnsupported);

  auto v6 = Multiaddr::from_ip_tcp("2001:db8::1", 443);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->to_string(), "/ip6/2001:db8::1/tcp/443");
  EXPECT_EQ(v6->tcp_endpoint()->kind, HostPort::Kind::kIp6);
}

TEST(Multiaddr, AcceptsIpfsAliasAndCidPeerIds) {
  auto a = Multiaddr::from_string(
      "/ip4/1.2.3.4/tcp/1/ipfs/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  auto b = Multiaddr::from_string(
      "/ip4/1.2.3.4/tcp/1/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  ASSERT_TRUE(a.ok()) << test::err(a);
  ASSERT_TRUE(b.ok()) << test::err(b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->to_string(),
            "/ip4/1.2.3.4/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
}

TEST(Multiaddr, RejectsMalformedText) {
  const char* bad[] = {"",
                       "ip4/1.2.3.4",
                       "/",
                       "/ip4",
                       "/ip4/1.2.3",
                       "/ip4/1.2.3.256/tcp/1",
                       "/ip4/01.2.3.4",
                       "/ip4/1.2.3.4/tcp/65536",
                       "/ip4/1.2.3.4/tcp/-1",
                       "/ip4/1.2.3.4/tcp/",
                       "/ip4/1.2.3.4//tcp/1",
                       "/ip6/::g",
                       "/dns4//tcp/1",
                       "/unknown/1",
                       "/p2p/notapeerid"};
  for (const char* s : bad) {
    SCOPED_TRACE(s);
    EXPECT_FALSE(Multiaddr::from_string(s).ok());
  }
  EXPECT_EQ(Multiaddr::from_string("/webrtc/x").error().code, Errc::kUnsupported);
}

TEST(Multiaddr, RejectsMalformedBinary) {
  EXPECT_EQ(Multiaddr::from_bytes(hex("047f0000")).error().code, Errc::kTruncated);
  EXPECT_EQ(Multiaddr::from_bytes(hex("0601")).error().code, Errc::kTruncated);
  EXPECT_EQ(Multiaddr::from_bytes(hex("360b6578")).error().code, Errc::kTruncated);
  EXPECT_EQ(Multiaddr::from_bytes(hex("3600")).error().code, Errc::kMalformed);    // empty name
  EXPECT_EQ(Multiaddr::from_bytes(hex("36012f")).error().code, Errc::kMalformed);  // '/'
  EXPECT_EQ(Multiaddr::from_bytes(hex("e707")).error().code, Errc::kUnsupported);  // code 999
  EXPECT_TRUE(Multiaddr::from_bytes(hex("9802")).ok());  // webrtc-direct (280), value-less
  EXPECT_EQ(Multiaddr::from_bytes(hex("a50303010203")).ok(), false);  // bad peer id
  EXPECT_EQ(Multiaddr::from_bytes({}).error().code, Errc::kMalformed);
  Bytes big;
  for (int i = 0; i < 40; ++i) append(big, hex("cd03"));
  EXPECT_EQ(Multiaddr::from_bytes(big).error().code, Errc::kTooLarge);
}

}  // namespace
}  // namespace kwaai::p2p::libp2p
