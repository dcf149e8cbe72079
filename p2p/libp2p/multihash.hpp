// Multihash: uvarint(code) || uvarint(len) || digest. Only the two codes peer ids use.
#pragma once

#include <array>
#include <cstdint>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

inline constexpr std::uint64_t kMultihashIdentity = 0x00;
inline constexpr std::uint64_t kMultihashSha2_256 = 0x12;
// Identity multihashes inline the data; cap what we accept from outside.
inline constexpr std::size_t kMaxIdentityMultihashDigest = 128;

struct Multihash {
  std::uint64_t code = kMultihashIdentity;
  Bytes digest;

  Bytes encode() const;
  bool operator==(const Multihash&) const = default;
};

Multihash multihash_identity(ByteView data);
Multihash multihash_sha2_256(ByteView data);

// Decodes one multihash and requires it to span all of `in`. Accepts identity (digest ≤
// kMaxIdentityMultihashDigest) and sha2-256 (digest exactly 32); other codes are kUnsupported.
Result<Multihash> decode_multihash(ByteView in);

// SHA-256 via libsodium.
std::array<std::uint8_t, 32> sha256(ByteView data);

}  // namespace kwaai::p2p::libp2p
