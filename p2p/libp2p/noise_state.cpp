// Noise framework objects for XX (CipherState, SymmetricState, HandshakeState): hashing, HKDF
// and X25519 on libsodium, the ChaCha20-Poly1305 AEAD on OpenSSL EVP (see noise.hpp).
#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>

#include "p2p/libp2p/noise.hpp"

namespace kwaai::p2p::libp2p::noise {
namespace {

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

Key32 hmac(const Key32& key, ByteView a, ByteView b = {}) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, a.data(), a.size());
  crypto_auth_hmacsha256_update(&st, b.data(), b.size());
  Key32 out{};
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}

// 4 zero bytes ‖ little-endian 64-bit counter.
std::array<std::uint8_t, 12> make_nonce(std::uint64_t n) {
  std::array<std::uint8_t, 12> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return nonce;
}

}  // namespace

X25519Keypair X25519Keypair::generate() {
  ensure_sodium();
  Key32 priv{};
  randombytes_buf(priv.data(), priv.size());
  X25519Keypair kp = from_private(priv);
  sodium_memzero(priv.data(), priv.size());
  return kp;
}

X25519Keypair X25519Keypair::from_private(const Key32& private_key) {
  ensure_sodium();
  X25519Keypair kp;
  kp.private_key = private_key;
  crypto_scalarmult_base(kp.public_key.data(), kp.private_key.data());
  return kp;
}

std::pair<Key32, Key32> hkdf2(const Key32& chaining_key, ByteView ikm) {
  Key32 temp = hmac(chaining_key, ikm);
  const std::uint8_t one = 0x01, two = 0x02;
  Key32 o1 = hmac(temp, ByteView(&one, 1));
  Key32 o2 = hmac(temp, o1, ByteView(&two, 1));
  sodium_memzero(temp.data(), temp.size());
  return {o1, o2};
}

// ---- CipherState -----------------------------------------------------------------------

CipherState::~CipherState() {
  sodium_memzero(key_.data(), key_.size());
}

void CipherState::CtxFree::operator()(evp_cipher_ctx_st* c) const {
  EVP_CIPHER_CTX_free(c);  // also wipes the key schedule
}

CipherState& CipherState::operator=(const CipherState& o) {
  if (this == &o) return *this;
  key_ = o.key_;
  has_key_ = o.has_key_;
  nonce_ = o.nonce_;
  enc_.reset();  // keyed with the old key
  dec_.reset();
  return *this;
}

Status CipherState::run(bool encrypt, ByteView ad, ByteView in, std::uint8_t* out,
                        std::uint8_t* tag) {
  const char* what = encrypt ? "noise: send" : "noise: receive";
  if (nonce_ == UINT64_MAX) return make_error(Errc::kState, std::string(what) + " nonce exhausted");
  if (in.size() > static_cast<std::size_t>(INT_MAX))
    return make_error(Errc::kTooLarge, std::string(what) + ": message over 2 GiB");
  Ctx& ctx = encrypt ? enc_ : dec_;
  const int enc = encrypt ? 1 : 0;
  if (!ctx) {
    Ctx fresh(EVP_CIPHER_CTX_new());
    if (!fresh || EVP_CipherInit_ex(fresh.get(), EVP_chacha20_poly1305(), nullptr, key_.data(),
                                    nullptr, enc) != 1)
      return make_error(Errc::kCrypto, std::string(what) + ": EVP chacha20-poly1305 init failed");
    ctx = std::move(fresh);
  }
  const auto nonce = make_nonce(nonce_);
  int len = 0;
  // Re-arming with only the nonce keeps the key schedule (and resets the Poly1305 state).
  bool ok = EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, nullptr, nonce.data(), enc) == 1;
  if (ok && !encrypt)
    ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagLength), tag) ==
         1;
  if (ok && !ad.empty())
    ok = EVP_CipherUpdate(ctx.get(), nullptr, &len, ad.data(), static_cast<int>(ad.size())) == 1;
  if (ok && !in.empty())
    ok = EVP_CipherUpdate(ctx.get(), out, &len, in.data(), static_cast<int>(in.size())) == 1;
  if (!ok) return make_error(Errc::kCrypto, std::string(what) + ": EVP update failed");
  // For decryption the final call is the tag check.
  if (EVP_CipherFinal_ex(ctx.get(), out + in.size(), &len) != 1) {
    if (!encrypt)
      return make_error(Errc::kCrypto, "noise: authentication tag mismatch (nonce " +
                                           std::to_string(nonce_) + ")");
    return make_error(Errc::kCrypto, "noise: send: EVP final failed");
  }
  if (encrypt &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagLength), tag) != 1)
    return make_error(Errc::kCrypto, "noise: send: EVP tag read failed");
  ++nonce_;
  return Status{};
}

Status CipherState::encrypt_into(ByteView in, std::uint8_t* out, std::uint8_t* tag) {
  if (!has_key_) return make_error(Errc::kState, "noise: transport encryption without a key");
  return run(true, {}, in, out, tag);
}

Status CipherState::decrypt_into(ByteView in, const std::uint8_t* tag, std::uint8_t* out) {
  if (!has_key_) return make_error(Errc::kState, "noise: transport decryption without a key");
  // OpenSSL's SET_TAG takes a non-const pointer but only reads it.
  return run(false, {}, in, out, const_cast<std::uint8_t*>(tag));
}

Result<Bytes> CipherState::encrypt_with_ad(ByteView ad, ByteView plaintext) {
  if (!has_key_) return Bytes(plaintext.begin(), plaintext.end());
  Bytes out(plaintext.size() + kTagLength);
  if (auto st = run(true, ad, plaintext, out.data(), out.data() + plaintext.size()); !st)
    return std::move(st).error();
  return out;
}

Result<Bytes> CipherState::decrypt_with_ad(ByteView ad, ByteView ciphertext) {
  if (!has_key_) return Bytes(ciphertext.begin(), ciphertext.end());
  if (nonce_ == UINT64_MAX) return make_error(Errc::kState, "noise: receive nonce exhausted");
  if (ciphertext.size() < kTagLength)
    return make_error(Errc::kMalformed, "noise: ciphertext shorter than the 16-byte tag");
  const std::size_t n = ciphertext.size() - kTagLength;
  // +1: EVP_CipherFinal_ex is given out + n, which must be a valid pointer even when n == 0.
  Bytes out(n + 1);
  if (auto st = run(false, ad, ciphertext.first(n), out.data(),
                    const_cast<std::uint8_t*>(ciphertext.data() + n));
      !st)
    return std::move(st).error();
  out.resize(n);
  return out;
}

// ---- SymmetricState --------------------------------------------------------------------

SymmetricState::SymmetricState() {
  ensure_sodium();
  static_assert(kProtocolName.size() == 32, "the name is used as h verbatim (no hashing)");
  std::memcpy(h_.data(), kProtocolName.data(), 32);
  ck_ = h_;
  mix_hash({});  // empty prologue, still mixed
}

void SymmetricState::mix_hash(ByteView data) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, h_.data(), h_.size());
  crypto_hash_sha256_update(&st, data.data(), data.size());
  crypto_hash_sha256_final(&st, h_.data());
}

void SymmetricState::mix_key(ByteView ikm) {
  auto [ck, k] = hkdf2(ck_, ikm);
  ck_ = ck;
  cipher_ = CipherState(k);
  sodium_memzero(k.data(), k.size());
}

Result<Bytes> SymmetricState::encrypt_and_hash(ByteView plaintext) {
  auto c = cipher_.encrypt_with_ad(h_, plaintext);
  if (!c) return c;
  mix_hash(*c);
  return c;
}

Result<Bytes> SymmetricState::decrypt_and_hash(ByteView ciphertext) {
  auto p = cipher_.decrypt_with_ad(h_, ciphertext);
  if (!p) return p;
  mix_hash(ciphertext);
  return p;
}

std::pair<CipherState, CipherState> SymmetricState::split() const {
  auto [k1, k2] = hkdf2(ck_, {});
  std::pair<CipherState, CipherState> out{CipherState(k1), CipherState(k2)};
  sodium_memzero(k1.data(), k1.size());
  sodium_memzero(k2.data(), k2.size());
  return out;
}

// ---- HandshakeState --------------------------------------------------------------------

HandshakeState::HandshakeState(Role role, const X25519Keypair& static_key,
                               std::optional<X25519Keypair> ephemeral)
    : role_(role), s_(static_key), e_(ephemeral ? *ephemeral : X25519Keypair::generate()) {}

bool HandshakeState::is_my_turn() const {
  if (complete()) return false;
  // Messages 0 and 2 are the initiator's, 1 the responder's.
  return (index_ % 2 == 0) == (role_ == Role::kInitiator);
}

Status HandshakeState::mix_dh(const Key32& priv, const Key32& pub) {
  Key32 shared{};
  if (crypto_scalarmult(shared.data(), priv.data(), pub.data()) != 0)
    return make_error(Errc::kCrypto, "noise: X25519 with a low-order point");
  sym_.mix_key(shared);
  sodium_memzero(shared.data(), shared.size());
  return {};
}

Result<Bytes> HandshakeState::write_message(ByteView payload) {
  if (!is_my_turn()) return make_error(Errc::kState, "noise: not our turn to write");
  Bytes out;
  if (index_ == 0) {  // -> e
    if (!payload.empty()) return make_error(Errc::kState, "noise: message 1 payload must be empty");
    append(out, e_.public_key);
    sym_.mix_hash(e_.public_key);
  } else if (index_ == 1) {  // <- e, ee, s, es
    append(out, e_.public_key);
    sym_.mix_hash(e_.public_key);
    if (auto st = mix_dh(e_.private_key, *re_); !st) return std::move(st).error();
    auto c = sym_.encrypt_and_hash(s_.public_key);
    if (!c) return c;
    append(out, *c);
    if (auto st = mix_dh(s_.private_key, *re_); !st) return std::move(st).error();
  } else {  // -> s, se
    auto c = sym_.encrypt_and_hash(s_.public_key);
    if (!c) return c;
    append(out, *c);
    if (auto st = mix_dh(s_.private_key, *re_); !st) return std::move(st).error();
  }
  auto c = sym_.encrypt_and_hash(payload);
  if (!c) return c;
  append(out, *c);
  ++index_;
  return out;
}

Result<Bytes> HandshakeState::read_message(ByteView msg) {
  if (complete() || is_my_turn()) return make_error(Errc::kState, "noise: not expecting a message");
  auto take_key = [&](Key32& k) {
    std::copy_n(msg.begin(), 32, k.begin());
    msg = msg.subspan(32);
  };
  if (index_ == 0) {  // -> e
    if (msg.size() < kDhLength) return make_error(Errc::kMalformed, "noise: message 1 too short");
    Key32 re{};
    take_key(re);
    re_ = re;
    sym_.mix_hash(re);
  } else if (index_ == 1) {  // <- e, ee, s, es
    if (msg.size() < kDhLength + kDhLength + kTagLength + kTagLength)
      return make_error(Errc::kMalformed, "noise: message 2 too short");
    Key32 re{};
    take_key(re);
    re_ = re;
    sym_.mix_hash(re);
    if (auto st = mix_dh(e_.private_key, *re_); !st) return std::move(st).error();
    auto rs = sym_.decrypt_and_hash(msg.first(kDhLength + kTagLength));
    if (!rs)
      return make_error(rs.error().code, "noise: message 2 static key: " + rs.error().message);
    msg = msg.subspan(kDhLength + kTagLength);
    Key32 k{};
    std::copy_n(rs->begin(), 32, k.begin());
    rs_ = k;
    if (auto st = mix_dh(e_.private_key, *rs_); !st) return std::move(st).error();
  } else {  // -> s, se
    if (msg.size() < kDhLength + kTagLength + kTagLength)
      return make_error(Errc::kMalformed, "noise: message 3 too short");
    auto rs = sym_.decrypt_and_hash(msg.first(kDhLength + kTagLength));
    if (!rs)
      return make_error(rs.error().code, "noise: message 3 static key: " + rs.error().message);
    msg = msg.subspan(kDhLength + kTagLength);
    Key32 k{};
    std::copy_n(rs->begin(), 32, k.begin());
    rs_ = k;
    if (auto st = mix_dh(e_.private_key, *rs_); !st) return std::move(st).error();
  }
  auto payload = sym_.decrypt_and_hash(msg);
  if (!payload)
    return make_error(payload.error().code, "noise: payload: " + payload.error().message);
  ++index_;
  return payload;
}

Result<std::pair<CipherState, CipherState>> HandshakeState::split() const {
  if (!complete()) return make_error(Errc::kState, "noise: split before the handshake completed");
  auto [c1, c2] = sym_.split();
  // c1 is initiator→responder.
  if (role_ == Role::kInitiator) return std::pair{c1, c2};
  return std::pair{c2, c1};
}

// ---- transport fast path (NoiseSession's allocating calls live in noise_handshake.cpp) ---

std::size_t NoiseSession::framed_size(std::size_t n) {
  const std::size_t frames =
      n == 0 ? 1 : (n + kMaxPlaintextLength - 1) / kMaxPlaintextLength;  // empty: one tag frame
  return n + frames * (2 + kTagLength);
}

Status NoiseSession::encrypt_frames_into(ByteView plaintext, std::span<std::uint8_t> out) {
  if (out.size() != framed_size(plaintext.size()))
    return make_error(Errc::kState, "noise: output of " + std::to_string(out.size()) +
                                        " bytes for " + std::to_string(plaintext.size()) +
                                        " plaintext bytes (need " +
                                        std::to_string(framed_size(plaintext.size())) + ")");
  std::uint8_t* p = out.data();
  do {
    const std::size_t n = std::min(plaintext.size(), kMaxPlaintextLength);
    const std::size_t len = n + kTagLength;
    p[0] = static_cast<std::uint8_t>(len >> 8);
    p[1] = static_cast<std::uint8_t>(len & 0xff);
    if (auto st = send_.encrypt_into(plaintext.first(n), p + 2, p + 2 + n); !st) return st;
    p += 2 + len;
    plaintext = plaintext.subspan(n);
  } while (!plaintext.empty());
  return Status{};
}

Status NoiseSession::decrypt_into(ByteView ciphertext, const std::uint8_t* tag, std::uint8_t* out) {
  if (ciphertext.size() + kTagLength > kMaxFrameLength)
    return make_error(Errc::kTooLarge, "noise frame > 65535");
  return recv_.decrypt_into(ciphertext, tag, out);
}

}  // namespace kwaai::p2p::libp2p::noise
