// Multiformats unsigned varint (LEB128, 7 bits per byte, least significant group first).
// Decoding is strict like go-varint: at most 9 bytes (63 bits) and minimal encoding only,
// so every accepted byte string has exactly one value and re-encodes to itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

inline constexpr std::size_t kMaxUvarintBytes = 9;
inline constexpr std::uint64_t kMaxUvarintValue = (std::uint64_t{1} << 63) - 1;

struct UvarintDecoded {
  std::uint64_t value;
  std::size_t size;  // bytes consumed
};

// Appends the minimal encoding. Values above kMaxUvarintValue are encoded as 10 bytes
// (as LEB128 allows) but decode_uvarint rejects them; callers never produce such values.
void encode_uvarint(std::uint64_t value, Bytes& out);
Bytes encode_uvarint(std::uint64_t value);
std::size_t uvarint_size(std::uint64_t value);

// Strict decode from the start of `in`. kTruncated if `in` ends mid-varint (incremental
// readers treat that as "need more"), kTooLarge past 9 bytes, kMalformed if non-minimal.
Result<UvarintDecoded> decode_uvarint(ByteView in);

}  // namespace kwaai::p2p::libp2p
