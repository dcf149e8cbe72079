// Noise XX as libp2p runs it (/noise): Noise_XX_25519_ChaChaPoly_SHA256, empty prologue.
//
// Three layers, all IO-free:
//  * CipherState / SymmetricState / HandshakeState: the Noise framework objects (§5 of the
//    Noise spec) for the XX pattern, with injectable static/ephemeral keys for known-answer
//    tests.
//  * NoiseHandshake: the libp2p layer on top: builds and verifies the signed handshake payload
//    (identity key, signature over "noise-libp2p-static-key:" ‖ static key, stream_muxers
//    extension), checks the expected PeerId and yields a NoiseSession.
//  * Framing: every Noise message on the wire is u16be(len) ‖ bytes, len ≤ 65535;
//    transport plaintext is chunked at 65519 bytes (65535 − 16-byte tag).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/crypto/keys.hpp"
#include "p2p/libp2p/peer_id.hpp"
#include "p2p/libp2p/result.hpp"

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX, kept out of this header

namespace kwaai::p2p::libp2p::noise {

inline constexpr std::string_view kProtocolId = "/noise";
inline constexpr std::string_view kProtocolName = "Noise_XX_25519_ChaChaPoly_SHA256";
inline constexpr std::string_view kSignaturePrefix = "noise-libp2p-static-key:";
inline constexpr std::size_t kMaxFrameLength = 65535;
inline constexpr std::size_t kTagLength = 16;
inline constexpr std::size_t kMaxPlaintextLength = kMaxFrameLength - kTagLength;  // 65519
inline constexpr std::size_t kDhLength = 32;
// go ignores muxer lists longer than 100; we reject payloads that carry more.
inline constexpr std::size_t kMaxStreamMuxers = 100;

using Key32 = std::array<std::uint8_t, 32>;

struct X25519Keypair {
  Key32 private_key{};
  Key32 public_key{};
  static X25519Keypair generate();
  static X25519Keypair from_private(const Key32& private_key);  // libsodium clamps
};

// HKDF as Noise defines it (HMAC-SHA256 chain, two 32-byte outputs, no info/length).
std::pair<Key32, Key32> hkdf2(const Key32& chaining_key, ByteView input_key_material);

// ChaCha20-Poly1305 (RFC 8439) with the Noise nonce (4 zero bytes ‖ u64le counter). The AEAD
// runs on OpenSSL's EVP: its AVX-512 ChaCha20 and Poly1305 are ~4x libsodium's here, and the
// transport's throughput is bounded by this cipher. One EVP context per direction is created
// on first use and kept, so a frame costs no allocation.
class CipherState {
 public:
  CipherState() = default;
  explicit CipherState(const Key32& key) : key_(key), has_key_(true) {}
  ~CipherState();
  // Copies share key and nonce, not the EVP contexts (each copy makes its own).
  CipherState(const CipherState& o) : key_(o.key_), has_key_(o.has_key_), nonce_(o.nonce_) {}
  CipherState& operator=(const CipherState& o);
  CipherState(CipherState&&) noexcept = default;
  CipherState& operator=(CipherState&&) noexcept = default;

  bool has_key() const { return has_key_; }
  std::uint64_t nonce() const { return nonce_; }
  // Without a key these return the input unchanged (Noise spec). Fails with kState when the
  // nonce is exhausted (2^64−1 is reserved), kCrypto on a tag mismatch.
  Result<Bytes> encrypt_with_ad(ByteView ad, ByteView plaintext);
  Result<Bytes> decrypt_with_ad(ByteView ad, ByteView ciphertext);

  // Transport fast path (empty AD, key required): `in` → `out` (same size; `out` may equal
  // `in` exactly, never partially overlap it), tag written to / checked against `tag`.
  // On a tag mismatch `out` holds unauthenticated bytes the caller must discard; the nonce
  // only advances on success.
  Status encrypt_into(ByteView in, std::uint8_t* out, std::uint8_t* tag);
  Status decrypt_into(ByteView in, const std::uint8_t* tag, std::uint8_t* out);

  // For tests: the raw key.
  const Key32& key() const { return key_; }

 private:
  struct CtxFree {
    void operator()(evp_cipher_ctx_st* c) const;
  };
  using Ctx = std::unique_ptr<evp_cipher_ctx_st, CtxFree>;
  Status run(bool encrypt, ByteView ad, ByteView in, std::uint8_t* out, std::uint8_t* tag);

  Key32 key_{};
  bool has_key_ = false;
  std::uint64_t nonce_ = 0;
  Ctx enc_, dec_;  // created lazily; not copied
};

class SymmetricState {
 public:
  SymmetricState();  // InitializeSymmetric(kProtocolName) + MixHash(empty prologue)
  void mix_hash(ByteView data);
  void mix_key(ByteView input_key_material);
  Result<Bytes> encrypt_and_hash(ByteView plaintext);
  Result<Bytes> decrypt_and_hash(ByteView ciphertext);
  std::pair<CipherState, CipherState> split() const;
  const Key32& handshake_hash() const { return h_; }
  bool has_key() const { return cipher_.has_key(); }

 private:
  Key32 ck_{};
  Key32 h_{};
  CipherState cipher_;
};

enum class Role : std::uint8_t { kInitiator, kResponder };

// The XX pattern: -> e ; <- e, ee, s, es ; -> s, se.
class HandshakeState {
 public:
  HandshakeState(Role role, const X25519Keypair& static_key,
                 std::optional<X25519Keypair> ephemeral = std::nullopt);

  Role role() const { return role_; }
  // Index of the next message (0, 1, 2); 3 when complete.
  int message_index() const { return index_; }
  bool is_my_turn() const;
  bool complete() const { return index_ == 3; }

  // Writes the next handshake message with `payload` (must be empty for message 0).
  Result<Bytes> write_message(ByteView payload);
  // Reads the next handshake message and returns its decrypted payload.
  Result<Bytes> read_message(ByteView message);

  // After completion: (send, receive) cipher states for this side.
  Result<std::pair<CipherState, CipherState>> split() const;
  const Key32& handshake_hash() const { return sym_.handshake_hash(); }
  const std::optional<Key32>& remote_static() const { return rs_; }
  const X25519Keypair& local_static() const { return s_; }

 private:
  Status mix_dh(const Key32& priv, const Key32& pub);

  Role role_;
  int index_ = 0;
  SymmetricState sym_;
  X25519Keypair s_;
  X25519Keypair e_;
  std::optional<Key32> rs_;
  std::optional<Key32> re_;
};

// ---- libp2p handshake payload (NoiseHandshakePayload protobuf) -------------------------

inline constexpr std::size_t kMaxHandshakePayload = 8192;

struct HandshakePayload {
  Bytes identity_key;  // serialized crypto.proto PublicKey
  Bytes identity_sig;
  bool has_extensions = false;
  std::vector<std::string> stream_muxers;
  std::vector<Bytes> webtransport_certhashes;

  Bytes encode() const;
  // Rejects payloads > kMaxHandshakePayload and muxer lists > kMaxStreamMuxers.
  static Result<HandshakePayload> decode(ByteView bytes);
};

// Builds this node's signed payload for its static X25519 key.
Result<HandshakePayload> make_payload(const PrivateKey& identity, const Key32& static_public,
                                      const std::optional<std::vector<std::string>>& muxers);

// Verifies a remote payload against the static key learned in the handshake; returns the
// remote identity key.
Result<PublicKey> verify_payload(const HandshakePayload& payload, const Key32& remote_static);

// Inlined muxer negotiation: first entry of the initiator's list the responder supports;
// nullopt when either side sent no list (fall back to multistream-select). kNegotiationFailed
// when both lists are present but disjoint.
Result<std::optional<std::string>> select_early_muxer(
    const std::optional<std::vector<std::string>>& initiator,
    const std::optional<std::vector<std::string>>& responder);

// ---- transport -----------------------------------------------------------------------

// One direction-pair of an established secure channel.
class NoiseSession {
 public:
  NoiseSession(CipherState send, CipherState recv) : send_(send), recv_(recv) {}
  // Encrypts `plaintext` into one or more framed messages (u16be len ‖ ciphertext), chunked
  // at kMaxPlaintextLength.
  Result<Bytes> encrypt_frames(ByteView plaintext);
  // Decrypts one frame body (without the 2-byte length prefix).
  Result<Bytes> decrypt_frame(ByteView body);

  // Transport fast path, allocation-free. framed_size(n) is the wire size of n plaintext
  // bytes; encrypt_frames_into writes exactly that many bytes (same framing as
  // encrypt_frames) into `out`, which must have that size (kState otherwise).
  static std::size_t framed_size(std::size_t plaintext_size);
  Status encrypt_frames_into(ByteView plaintext, std::span<std::uint8_t> out);
  // Decrypts a frame body (`ciphertext` without its tag; `tag` the 16 bytes after it) into
  // `out`, which may be the ciphertext's own address (in place) but must not partially
  // overlap it. On failure `out` holds garbage and the session is unusable.
  Status decrypt_into(ByteView ciphertext, const std::uint8_t* tag, std::uint8_t* out);
  std::uint64_t send_nonce() const { return send_.nonce(); }
  std::uint64_t recv_nonce() const { return recv_.nonce(); }

 private:
  CipherState send_;
  CipherState recv_;
};

struct HandshakeOptions {
  // Our muxer list for early negotiation (nullopt = send no extensions).
  std::optional<std::vector<std::string>> stream_muxers = std::vector<std::string>{"/yamux/1.0.0"};
  // The peer we dialed, if known: the handshake fails with kPeerIdMismatch otherwise.
  std::optional<PeerId> expected_peer;
  // For known-answer tests only; random when unset.
  std::optional<X25519Keypair> static_key;
  std::optional<X25519Keypair> ephemeral_key;
};

struct HandshakeResult {
  NoiseSession session;
  PublicKey remote_key;
  PeerId remote_peer;
  std::optional<std::vector<std::string>> remote_muxers;  // nullopt: no extensions sent
  std::optional<std::string> early_muxer;  // set when inlined muxer negotiation succeeded
  Key32 handshake_hash;
};

// The libp2p Noise handshake state machine: alternate next_message() (bytes to frame and
// send) and on_message() (a received frame body) until done(), then take result().
class NoiseHandshake {
 public:
  NoiseHandshake(Role role, PrivateKey identity, HandshakeOptions options = {});

  bool done() const { return hs_.complete(); }
  bool is_my_turn() const { return hs_.is_my_turn(); }
  // The next handshake message to send (unframed). kState if it is the peer's turn.
  Result<Bytes> next_message();
  // A received handshake message (unframed frame body).
  Status on_message(ByteView message);
  // Valid once done(); kState before. Single use: a second call fails with kState, because
  // two sessions with the same keys would reuse nonces.
  Result<HandshakeResult> result() const;

 private:
  Role role_;
  PrivateKey identity_;
  HandshakeOptions options_;
  HandshakeState hs_;
  std::optional<PublicKey> remote_key_;
  std::optional<std::vector<std::string>> remote_muxers_;
  bool failed_ = false;
  mutable bool result_taken_ = false;
};

// ---- framing ---------------------------------------------------------------------------

// Appends u16be(len) ‖ body; kTooLarge if body > 65535.
Status append_frame(ByteView body, Bytes& out);

// Incremental de-framer; a frame is at most 65535 bytes by construction, so the buffer is
// bounded by one frame plus whatever the caller feeds at once.
class FrameReader {
 public:
  void feed(ByteView data) { append(buf_, data); }
  // Next complete frame body, nullopt if more bytes are needed.
  std::optional<Bytes> next();
  Bytes take_rest();
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  Bytes buf_;
  std::size_t pos_ = 0;
};

}  // namespace kwaai::p2p::libp2p::noise
