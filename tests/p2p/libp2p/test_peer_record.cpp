// Signed envelopes / peer records against a vector made by js-libp2p @libp2p/peer-record 9.0.16
// (data/gen_peer_record_vector.mjs; Ed25519 signatures are deterministic, so bytes must match).
#include <gtest/gtest.h>

#include "p2p/libp2p/peer_record.hpp"
#include "tests/p2p/libp2p/test_util.hpp"

namespace kwaai::p2p::libp2p {
namespace {
using test::hex;

constexpr const char* kJsRecord =
    "0a26002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c1080d095ffbc"
    "311a0a0a08047f000001060fa11a120a10360b6578616d706c652e636f6d0601bb";
constexpr const char* kJsEnvelope =
    "0a2408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c120203011a4f0a26"
    "002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c1080d095ffbc311a"
    "0a0a08047f000001060fa11a120a10360b6578616d706c652e636f6d0601bb2a40b9c57a27a1992c019d798e64b0"
    "a393b915be189e16724301bf3d3a7b29f976f98ca8e9b098d491a5af860479e5ad53c1e91c1972e3e25c52c6ef26"
    "f3a912e902";

PrivateKey seed7() {
  std::array<std::uint8_t, 32> s{};
  s.fill(7);
  return PrivateKey::ed25519_from_seed(s);
}

PeerRecord vector_record() {
  const PrivateKey k = seed7();
  return PeerRecord{PeerId::from_public_key(k.public_key()),
                    1700000000000ull,
                    {*Multiaddr::from_string("/ip4/127.0.0.1/tcp/4001"),
                     *Multiaddr::from_string("/dns4/example.com/tcp/443")}};
}

TEST(PeerRecord, SealMatchesJsLibp2pBytes) {
  EXPECT_EQ(to_hex(vector_record().encode()), kJsRecord);
  auto env = seal_peer_record(seed7(), vector_record());
  ASSERT_TRUE(env.ok()) << test::err(env);
  EXPECT_EQ(to_hex(*env), kJsEnvelope);
}

TEST(PeerRecord, OpensJsEnvelope) {
  auto rec = open_peer_record(hex(kJsEnvelope));
  ASSERT_TRUE(rec.ok()) << test::err(rec);
  EXPECT_EQ(rec->peer_id.to_base58(), "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7");
  EXPECT_EQ(rec->seq, 1700000000000ull);
  ASSERT_EQ(rec->addresses.size(), 2u);
  EXPECT_EQ(rec->addresses[1].to_string(), "/dns4/example.com/tcp/443");
}

TEST(PeerRecord, RejectsTamperingWrongDomainAndForeignPeerId) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Bytes env = hex(kJsEnvelope);
  // Flip a bit inside the payload (offset 44.. is the record) or the signature.
  env[44 + rng() % (env.size() - 44)] ^= 0x01;
  EXPECT_FALSE(open_peer_record(env).ok());
  EXPECT_EQ(SignedEnvelope::open(hex(kJsEnvelope), "libp2p-routing-state").error().code,
            Errc::kBadSignature);
  // Signed by another key than the record's peer id.
  const PrivateKey other = PrivateKey::generate_ed25519();
  EXPECT_EQ(seal_peer_record(other, vector_record()).error().code, Errc::kState);
  auto forged = SignedEnvelope::seal(other, kPeerRecordDomain, kPeerRecordPayloadType,
                                     vector_record().encode());
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(open_peer_record(forged->encode()).error().code, Errc::kPeerIdMismatch);
  // Right signature, wrong payload type.
  auto wrong_type =
      SignedEnvelope::seal(seed7(), kPeerRecordDomain, hex("0302"), vector_record().encode());
  EXPECT_EQ(open_peer_record(wrong_type->encode()).error().code, Errc::kProtocol);
}

TEST(PeerRecord, UnparseableAddressesAreDroppedNotFatal) {
  PeerRecord r = vector_record();
  Bytes enc = r.encode();
  // Append AddressInfo{multiaddr = e7 07 (unknown code 999)}: 1a 04 0a 02 e7 07.
  append(enc, hex("1a040a02e707"));
  auto d = PeerRecord::decode(enc);
  ASSERT_TRUE(d.ok()) << test::err(d);
  EXPECT_EQ(d->addresses.size(), 2u);
}

}  // namespace
}  // namespace kwaai::p2p::libp2p
