// PeerId: the multihash of a serialized crypto.proto PublicKey (identity multihash when the
// protobuf is ≤ 42 bytes, e.g. Ed25519 → "12D3KooW…"; sha2-256 otherwise, e.g. RSA → "Qm…").
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/crypto/keys.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

inline constexpr std::size_t kMaxInlinePublicKeyLength = 42;
inline constexpr std::uint64_t kCidV1 = 0x01;
inline constexpr std::uint64_t kMulticodecLibp2pKey = 0x72;

class PeerId {
 public:
  static PeerId from_public_key(const PublicKey& key);
  // Binary form (a multihash) as carried in kad messages and /p2p multiaddrs. Accepts an
  // identity multihash wrapping a parseable PublicKey, or a sha2-256 multihash.
  static Result<PeerId> from_bytes(ByteView multihash);
  // Text: base58btc multihash ("12D3KooW…", "Qm…", "16Uiu2…") or a multibase CIDv1 with the
  // libp2p-key codec ("bafz…").
  static Result<PeerId> from_string(std::string_view text);

  const Bytes& bytes() const { return multihash_; }
  std::string to_base58() const;      // the display form
  std::string to_cid_string() const;  // "b" + base32(01 72 multihash)
  std::string to_string() const { return to_base58(); }

  // The public key, when the id inlines it (identity multihash).
  std::optional<PublicKey> inline_public_key() const;
  // True if `key` hashes to this id.
  bool matches(const PublicKey& key) const;

  auto operator<=>(const PeerId&) const = default;
  bool operator==(const PeerId&) const = default;

 private:
  explicit PeerId(Bytes mh) : multihash_(std::move(mh)) {}
  Bytes multihash_;
};

}  // namespace kwaai::p2p::libp2p

template <>
struct std::hash<kwaai::p2p::libp2p::PeerId> {
  std::size_t operator()(const kwaai::p2p::libp2p::PeerId& id) const noexcept;
};
