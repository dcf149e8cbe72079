// Noise: frame reader, handshake payload decoder, and both handshake roles fed attacker bytes.
// The first input byte picks the mode; fixed keys keep the targets deterministic.
#include <cstddef>
#include <cstdint>

#include "p2p/libp2p/noise.hpp"
#include "tests/fuzz/libp2p_fuzz_check.hpp"

using namespace kwaai::p2p::libp2p;
using namespace kwaai::p2p::libp2p::noise;

namespace {

HandshakeOptions fixed_options(std::uint8_t s, std::uint8_t e) {
  HandshakeOptions o;
  Key32 k{};
  k.fill(s);
  o.static_key = X25519Keypair::from_private(k);
  k.fill(e);
  o.ephemeral_key = X25519Keypair::from_private(k);
  return o;
}

const PrivateKey& identity() {
  static const PrivateKey k = PrivateKey::ed25519_from_seed([] {
    std::array<std::uint8_t, 32> s{};
    s.fill(0x42);
    return s;
  }());
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0] % 4;
  const ByteView in(data + 1, size - 1);
  switch (mode) {
    case 0: {  // payload protobuf: decode → encode → decode is stable
      auto p = HandshakePayload::decode(in);
      if (!p.ok()) break;
      auto again = HandshakePayload::decode(p->encode());
      LIBP2P_FUZZ_CHECK(again.ok());
      LIBP2P_FUZZ_CHECK(again->identity_key == p->identity_key &&
                        again->identity_sig == p->identity_sig &&
                        again->stream_muxers == p->stream_muxers &&
                        again->webtransport_certhashes == p->webtransport_certhashes);
      Key32 rs{};
      (void)verify_payload(*p, rs);
      break;
    }
    case 1: {  // responder reads msg1 = input, writes msg2, then reads msg3 = input again
      NoiseHandshake resp(Role::kResponder, identity(), fixed_options(0x21, 0x22));
      if (!resp.on_message(in).ok()) break;
      auto m2 = resp.next_message();
      // A low-order ephemeral key from the peer only surfaces at the first DH (in msg2).
      if (!m2.ok()) {
        LIBP2P_FUZZ_CHECK(m2.error().code == Errc::kCrypto);
        break;
      }
      if (resp.on_message(in).ok()) LIBP2P_FUZZ_CHECK(resp.result().ok());
      break;
    }
    case 2: {  // initiator reads msg2 = input
      NoiseHandshake ini(Role::kInitiator, identity(), fixed_options(0x11, 0x12));
      auto m1 = ini.next_message();
      LIBP2P_FUZZ_CHECK(m1.ok());
      if (ini.on_message(in).ok()) LIBP2P_FUZZ_CHECK(ini.next_message().ok());
      break;
    }
    case 3: {  // framing + transport decryption of each frame with a fixed key
      FrameReader reader;
      reader.feed(in);
      Key32 k{};
      k.fill(7);
      NoiseSession session{CipherState(k), CipherState(k)};
      while (auto f = reader.next()) {
        LIBP2P_FUZZ_CHECK(f->size() <= kMaxFrameLength);
        (void)session.decrypt_frame(*f);
      }
      LIBP2P_FUZZ_CHECK(reader.buffered() < 2 + kMaxFrameLength);
      break;
    }
  }
  return 0;
}
