// Noise XX: the js-libp2p-noise known-answer vector, full in-memory handshakes, tampering.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "p2p/libp2p/noise.hpp"
#include "tests/p2p/libp2p/test_util.hpp"

namespace kwaai::p2p::libp2p::noise {
namespace {
using test::hex;

nlohmann::json load_vector() {
  std::ifstream in(std::string(KWAAI_SHARED_DIR) + "/interop/js-libp2p/noise-vectors.json");
  EXPECT_TRUE(in.good()) << "missing shared/interop/js-libp2p/noise-vectors.json";
  return nlohmann::json::parse(in);
}

Key32 key32(const std::string& h) {
  const Bytes b = hex(h);
  Key32 k{};
  std::copy_n(b.begin(), 32, k.begin());
  return k;
}

std::array<std::uint8_t, 32> seed32(const std::string& h) {
  return key32(h);
}

struct Kat {
  nlohmann::json v = load_vector();
  PrivateKey ini_id = PrivateKey::ed25519_from_seed(seed32(v["initiator_identity_seed"]));
  PrivateKey resp_id = PrivateKey::ed25519_from_seed(seed32(v["responder_identity_seed"]));
  HandshakeOptions ini_opts() {
    HandshakeOptions o;
    o.static_key = X25519Keypair::from_private(key32(v["initiator_static_priv"]));
    o.ephemeral_key = X25519Keypair::from_private(key32(v["initiator_ephemeral_priv"]));
    return o;
  }
  HandshakeOptions resp_opts() {
    HandshakeOptions o;
    o.static_key = X25519Keypair::from_private(key32(v["responder_static_priv"]));
    o.ephemeral_key = X25519Keypair::from_private(key32(v["responder_ephemeral_priv"]));
    return o;
  }
  std::string s(const char* k) { return v[k].get<std::string>(); }
};

TEST(NoiseKat, HkdfMatchesNoiseDefinition) {
  // HKDF(ck, ikm) with ck = h0 = protocol name, ikm empty: recomputed from HMAC directly.
  Key32 ck{};
  std::copy(kProtocolName.begin(), kProtocolName.end(), ck.begin());
  auto [a, b] = hkdf2(ck, {});
  EXPECT_NE(a, b);
  auto [a2, b2] = hkdf2(ck, {});
  EXPECT_EQ(a, a2);
  EXPECT_EQ(b, b2);
}

TEST(NoiseKat, PayloadsMatchJsVector) {
  Kat k;
  EXPECT_EQ(to_hex(k.ini_id.public_key().to_protobuf()), k.s("initiator_identity_pubkey_proto"));
  EXPECT_EQ(to_hex(k.resp_id.public_key().to_protobuf()), k.s("responder_identity_pubkey_proto"));
  auto rp = make_payload(k.resp_id, k.resp_opts().static_key->public_key,
                         std::vector<std::string>{"/yamux/1.0.0"});
  ASSERT_TRUE(rp.ok());
  EXPECT_EQ(to_hex(rp->encode()), k.s("responder_payload_plain"));
  auto ip = make_payload(k.ini_id, k.ini_opts().static_key->public_key,
                         std::vector<std::string>{"/yamux/1.0.0"});
  ASSERT_TRUE(ip.ok());
  EXPECT_EQ(to_hex(ip->encode()), k.s("initiator_payload_plain"));
  auto decoded = HandshakePayload::decode(hex(k.s("initiator_payload_plain")));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->stream_muxers, std::vector<std::string>{"/yamux/1.0.0"});
  EXPECT_TRUE(verify_payload(*decoded, k.ini_opts().static_key->public_key).ok());
}

TEST(NoiseKat, InitiatorAndResponderReproduceAllMessagesAndKeys) {
  Kat k;
  NoiseHandshake ini(Role::kInitiator, k.ini_id, k.ini_opts());
  NoiseHandshake resp(Role::kResponder, k.resp_id, k.resp_opts());

  auto m1 = ini.next_message();
  ASSERT_TRUE(m1.ok()) << test::err(m1);
  EXPECT_EQ(to_hex(*m1), k.s("msg1"));
  ASSERT_TRUE(resp.on_message(*m1).ok());
  auto m2 = resp.next_message();
  ASSERT_TRUE(m2.ok()) << test::err(m2);
  EXPECT_EQ(to_hex(*m2), k.s("msg2"));
  auto st2 = ini.on_message(*m2);
  ASSERT_TRUE(st2.ok()) << st2.error().to_string();
  auto m3 = ini.next_message();
  ASSERT_TRUE(m3.ok()) << test::err(m3);
  EXPECT_EQ(to_hex(*m3), k.s("msg3"));
  ASSERT_TRUE(resp.on_message(*m3).ok());
  ASSERT_TRUE(ini.done() && resp.done());

  auto ri = ini.result();
  auto rr = resp.result();
  ASSERT_TRUE(ri.ok()) << test::err(ri);
  ASSERT_TRUE(rr.ok()) << test::err(rr);
  EXPECT_EQ(to_hex(ri->handshake_hash), k.s("handshake_hash"));
  EXPECT_EQ(to_hex(rr->handshake_hash), k.s("handshake_hash"));
  EXPECT_EQ(ri->remote_peer, PeerId::from_public_key(k.resp_id.public_key()));
  EXPECT_EQ(rr->remote_peer, PeerId::from_public_key(k.ini_id.public_key()));
  EXPECT_EQ(ri->early_muxer, std::optional<std::string>("/yamux/1.0.0"));
  EXPECT_EQ(rr->early_muxer, std::optional<std::string>("/yamux/1.0.0"));

  // Session keys: k1 initiator→responder, k2 responder→initiator, via the raw state.
  HandshakeState hi(Role::kInitiator, *k.ini_opts().static_key, k.ini_opts().ephemeral_key);
  ASSERT_TRUE(hi.write_message({}).ok());
  ASSERT_TRUE(hi.read_message(hex(k.s("msg2"))).ok());
  ASSERT_TRUE(hi.write_message(hex(k.s("initiator_payload_plain"))).ok());
  auto split = hi.split();
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(to_hex(split->first.key()), k.s("k1_initiator_to_responder"));
  EXPECT_EQ(to_hex(split->second.key()), k.s("k2_responder_to_initiator"));

  // First transport message "hello", framed.
  auto frames = ri->session.encrypt_frames(as_bytes("hello"));
  ASSERT_TRUE(frames.ok());
  EXPECT_EQ(to_hex(*frames), "0015" + k.s("first_transport_msg_initiator_hello"));
  auto plain = rr->session.decrypt_frame(ByteView(*frames).subspan(2));
  ASSERT_TRUE(plain.ok()) << test::err(plain);
  EXPECT_EQ(as_chars(*plain), "hello");
}

// Runs a full handshake in memory; returns the first error.
Status run(NoiseHandshake& a, NoiseHandshake& b) {
  NoiseHandshake* w = &a;
  NoiseHandshake* r = &b;
  for (int i = 0; i < 3; ++i) {
    auto m = w->next_message();
    if (!m) return std::move(m).error();
    if (auto st = r->on_message(*m); !st) return st;
    std::swap(w, r);
  }
  return {};
}

TEST(NoiseHandshake, RandomKeysCompleteAndExchangeDataBothWays) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const PrivateKey a = PrivateKey::generate_ed25519();
  const PrivateKey b = PrivateKey::generate_ed25519();
  HandshakeOptions ao;
  ao.expected_peer = PeerId::from_public_key(b.public_key());
  NoiseHandshake ini(Role::kInitiator, a, ao);
  NoiseHandshake resp(Role::kResponder, b);
  ASSERT_TRUE(run(ini, resp).ok());
  auto ri = ini.result();
  auto rr = resp.result();
  ASSERT_TRUE(ri.ok() && rr.ok());
  EXPECT_EQ(ri->handshake_hash, rr->handshake_hash);
  // A large message crosses several 65519-byte frames; decrypted in order it is identical.
  const Bytes big = test::random_bytes(rng, 200000 + rng() % 1000);
  auto frames = ri->session.encrypt_frames(big);
  ASSERT_TRUE(frames.ok());
  FrameReader reader;
  std::size_t off = 0;
  Bytes got;
  while (off < frames->size()) {  // feed in random slices to exercise reassembly
    const std::size_t n = std::min<std::size_t>(1 + rng() % 70000, frames->size() - off);
    reader.feed(ByteView(*frames).subspan(off, n));
    off += n;
    while (auto f = reader.next()) {
      EXPECT_LE(f->size(), kMaxFrameLength);
      auto p = rr->session.decrypt_frame(*f);
      ASSERT_TRUE(p.ok()) << test::err(p);
      append(got, *p);
    }
  }
  EXPECT_EQ(got, big);
  EXPECT_EQ(ri->session.send_nonce(), 4u);  // ceil(200k / 65519)
  auto back = rr->session.encrypt_frames(as_bytes("pong"));
  ASSERT_TRUE(back.ok());
  auto pong = ri->session.decrypt_frame(ByteView(*back).subspan(2));
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(as_chars(*pong), "pong");
}

TEST(NoiseHandshake, RsaIdentityHandshakes) {
  auto rsa = PrivateKey::load_file(std::string(KWAAI_SOURCE_DIR) +
                                   "/tests/p2p/libp2p/data/rsa4096_private_key.pb");
  ASSERT_TRUE(rsa.ok()) << test::err(rsa);
  NoiseHandshake ini(Role::kInitiator, PrivateKey::generate_ed25519());
  NoiseHandshake resp(Role::kResponder, *rsa);
  ASSERT_TRUE(run(ini, resp).ok());
  auto r = ini.result();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->remote_peer.to_base58(), "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG");
}

TEST(NoiseHandshake, WrongExpectedPeerFails) {
  HandshakeOptions o;
  o.expected_peer = PeerId::from_public_key(PrivateKey::generate_ed25519().public_key());
  NoiseHandshake ini(Role::kInitiator, PrivateKey::generate_ed25519(), o);
  NoiseHandshake resp(Role::kResponder, PrivateKey::generate_ed25519());
  auto st = run(ini, resp);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kPeerIdMismatch);
  EXPECT_FALSE(ini.result().ok());
}

TEST(NoiseHandshake, TamperedMessagesAreRejected) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int which = 1; which <= 2; ++which) {  // msg2 (to initiator), msg3 (to responder)
    NoiseHandshake ini(Role::kInitiator, PrivateKey::generate_ed25519());
    NoiseHandshake resp(Role::kResponder, PrivateKey::generate_ed25519());
    auto m1 = ini.next_message();
    ASSERT_TRUE(resp.on_message(*m1).ok());
    auto m2 = resp.next_message();
    if (which == 1) {
      (*m2)[32 + rng() % (m2->size() - 32)] ^= 0x01;  // inside the encrypted part
      EXPECT_EQ(ini.on_message(*m2).error().code, Errc::kCrypto);
      EXPECT_FALSE(ini.next_message().ok());
      continue;
    }
    ASSERT_TRUE(ini.on_message(*m2).ok());
    auto m3 = ini.next_message();
    (*m3)[rng() % m3->size()] ^= 0x80;
    EXPECT_EQ(resp.on_message(*m3).error().code, Errc::kCrypto);
    EXPECT_FALSE(resp.result().ok());
  }
}

TEST(NoiseHandshake, ForgedIdentitySignatureIsRejected) {
  // A responder that signs someone else's static key: decrypts fine, signature check fails.
  const PrivateKey id = PrivateKey::generate_ed25519();
  const auto s = X25519Keypair::generate();
  const auto other = X25519Keypair::generate();
  auto payload = make_payload(id, other.public_key, std::nullopt);
  ASSERT_TRUE(payload.ok());
  HandshakeState hi(Role::kInitiator, X25519Keypair::generate());
  HandshakeState hr(Role::kResponder, s);
  auto m1 = hi.write_message({});
  ASSERT_TRUE(hr.read_message(*m1).ok());
  auto m2 = hr.write_message(payload->encode());
  ASSERT_TRUE(m2.ok());
  auto got = hi.read_message(*m2);
  ASSERT_TRUE(got.ok());
  auto decoded = HandshakePayload::decode(*got);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(verify_payload(*decoded, *hi.remote_static()).error().code, Errc::kBadSignature);
}

TEST(NoiseHandshake, EarlyMuxerSelection) {
  using V = std::vector<std::string>;
  EXPECT_EQ(*select_early_muxer(V{"/yamux/1.0.0"}, V{"/mplex/6.7.0", "/yamux/1.0.0"}),
            std::optional<std::string>("/yamux/1.0.0"));
  EXPECT_EQ(*select_early_muxer(std::nullopt, V{"/yamux/1.0.0"}), std::nullopt);
  EXPECT_EQ(*select_early_muxer(V{"/yamux/1.0.0"}, std::nullopt), std::nullopt);
  EXPECT_EQ(select_early_muxer(V{"/a"}, V{"/b"}).error().code, Errc::kNegotiationFailed);
  // Without our list there is no early negotiation (fall back to multistream-select).
  HandshakeOptions none;
  none.stream_muxers = std::nullopt;
  NoiseHandshake ini(Role::kInitiator, PrivateKey::generate_ed25519(), none);
  NoiseHandshake resp(Role::kResponder, PrivateKey::generate_ed25519());
  ASSERT_TRUE(run(ini, resp).ok());
  EXPECT_EQ(ini.result()->early_muxer, std::nullopt);
  auto rr = resp.result();
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(rr->early_muxer, std::nullopt);
  EXPECT_EQ(rr->remote_muxers, std::nullopt);
  // Single use: a second session with the same keys would reuse nonces.
  EXPECT_EQ(resp.result().error().code, Errc::kState);
}

TEST(NoiseHandshake, OutOfTurnCallsAndShortMessagesFailCleanly) {
  NoiseHandshake resp(Role::kResponder, PrivateKey::generate_ed25519());
  EXPECT_EQ(resp.next_message().error().code, Errc::kState);
  EXPECT_EQ(resp.on_message(hex("0102")).error().code, Errc::kMalformed);
  NoiseHandshake ini(Role::kInitiator, PrivateKey::generate_ed25519());
  EXPECT_EQ(ini.on_message(Bytes(32)).error().code, Errc::kState);
  ASSERT_TRUE(ini.next_message().ok());
  EXPECT_EQ(ini.on_message(Bytes(40)).error().code, Errc::kMalformed);
}

TEST(NoiseFraming, LengthPrefixAndLimits) {
  Bytes out;
  ASSERT_TRUE(append_frame(hex("aabb"), out).ok());
  EXPECT_EQ(out, hex("0002aabb"));
  EXPECT_EQ(append_frame(Bytes(65536), out).error().code, Errc::kTooLarge);
  FrameReader r;
  r.feed(hex("0003aa"));
  EXPECT_FALSE(r.next().has_value());
  r.feed(hex("bbcc0000"));
  auto f = r.next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, hex("aabbcc"));
  auto empty = r.next();
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(NoiseCipher, NonceIsLittleEndianAndTagChecked) {
  CipherState a(key32(std::string(64, '1')));
  CipherState b(key32(std::string(64, '1')));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a.encrypt_with_ad({}, as_bytes("x")).ok());
  EXPECT_EQ(a.nonce(), 3u);
  auto c = a.encrypt_with_ad(as_bytes("ad"), as_bytes("payload"));
  // b is at nonce 0: decrypting a nonce-3 ciphertext fails and does not advance.
  EXPECT_EQ(b.decrypt_with_ad(as_bytes("ad"), *c).error().code, Errc::kCrypto);
  EXPECT_EQ(b.nonce(), 0u);
  CipherState d(key32(std::string(64, '1')));
  for (int i = 0; i < 3; ++i) (void)d.encrypt_with_ad({}, {});
  auto p = d.decrypt_with_ad(as_bytes("ad"), *c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(as_chars(*p), "payload");
  EXPECT_EQ(d.decrypt_with_ad({}, hex("00")).error().code, Errc::kMalformed);
}

}  // namespace
}  // namespace kwaai::p2p::libp2p::noise
