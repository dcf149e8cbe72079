// libp2p identity keys in the crypto.proto wire format (PublicKey/PrivateKey{Type, Data}).
//
// Own identities: Ed25519 (libsodium) and RSA (OpenSSL; for reusing a hivemind identity
// file, whose PrivateKey.Data is a PKCS#1 DER RSAPrivateKey). Remote keys that can be
// verified: Ed25519, RSA (PKIX SubjectPublicKeyInfo DER, PKCS#1 v1.5 over SHA-256, 2048..8192
// bits as go enforces), Secp256k1 (33-byte compressed point, DER ECDSA over SHA-256) and ECDSA
// (PKIX SubjectPublicKeyInfo DER, DER ECDSA over SHA-256), the last two through OpenSSL.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace kwaai::p2p::libp2p {

enum class KeyType : std::uint8_t { kRsa = 0, kEd25519 = 1, kSecp256k1 = 2, kEcdsa = 3 };
std::string_view to_string(KeyType t);

// Largest serialized key protobuf we accept from a peer (an 8192-bit RSA SPKI is ~1.1 KB).
inline constexpr std::size_t kMaxKeyProtobufSize = 4096;
inline constexpr std::size_t kRsaMinBits = 2048;
inline constexpr std::size_t kRsaMaxBits = 8192;

class PublicKey {
 public:
  PublicKey(KeyType type, Bytes data) : type_(type), data_(std::move(data)) {}

  // Parses a serialized crypto.proto PublicKey. Checks the per-type shape of Data (Ed25519 is
  // 32 bytes, Secp256k1 33, RSA/ECDSA parse as SPKI DER) so a parsed key can be verified with.
  static Result<PublicKey> from_protobuf(ByteView bytes);
  // Deterministic encoding: 08 <type> 12 <uvarint len> <data>.
  Bytes to_protobuf() const;

  KeyType type() const { return type_; }
  const Bytes& data() const { return data_; }

  // Ok only if `signature` is a valid signature of `message` under this key.
  Status verify(ByteView message, ByteView signature) const;

  bool operator==(const PublicKey&) const = default;

 private:
  KeyType type_;
  Bytes data_;
};

// An own identity. Copies share the underlying OpenSSL key (immutable after load).
class PrivateKey {
 public:
  static PrivateKey generate_ed25519();
  static PrivateKey ed25519_from_seed(const std::array<std::uint8_t, 32>& seed);
  // Serialized crypto.proto PrivateKey. Ed25519: 64 bytes seed‖pub (or legacy 96 bytes
  // seed‖pub‖pub; pub copies must agree and match the seed). RSA: PKCS#1 DER RSAPrivateKey.
  static Result<PrivateKey> from_protobuf(ByteView bytes);
  Bytes to_protobuf() const;

  // Key files hold the raw serialized PrivateKey protobuf (same as p2pd -id / hivemind
  // identity_path). save_file writes with mode 0600 via a temporary file + rename.
  static Result<PrivateKey> load_file(const std::filesystem::path& path);
  Status save_file(const std::filesystem::path& path) const;

  KeyType type() const { return type_; }
  const PublicKey& public_key() const { return public_; }

  // Ed25519: 64-byte signature. RSA: PKCS#1 v1.5 over SHA-256.
  Result<Bytes> sign(ByteView message) const;

  ~PrivateKey();
  PrivateKey(const PrivateKey&);
  PrivateKey& operator=(const PrivateKey&);
  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;

 private:
  PrivateKey(KeyType type, PublicKey pub) : type_(type), public_(std::move(pub)) {}

  KeyType type_;
  PublicKey public_;
  std::array<std::uint8_t, 64> ed25519_sk_{};  // libsodium layout seed‖pub; wiped on destroy
  std::shared_ptr<evp_pkey_st> rsa_;           // RSA keys only
};

}  // namespace kwaai::p2p::libp2p
