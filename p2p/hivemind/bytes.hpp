// Byte-buffer helpers shared by the hivemind codecs: hex for logs/tests, varints and fixed-width
// integers in the byte orders the wire formats use (protobuf varints, big-endian stream lengths,
// little-endian tensor buffers).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/hivemind/result.hpp"

namespace kwaai::p2p::hivemind {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

std::string to_hex(ByteView b);
Result<Bytes> from_hex(std::string_view hex);

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string to_string(ByteView b) {
  return {b.begin(), b.end()};
}
inline Bytes to_bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

// Unsigned LEB128 (Go binary.PutUvarint / protobuf varint).
void append_uvarint(Bytes& out, std::uint64_t v);

struct UvarintRead {
  std::uint64_t value = 0;
  std::size_t length = 0;  // bytes consumed; 0 together with ok() == false means "need more"
};
// Decodes a uvarint at the start of `in`. Errc::truncated if `in` ends inside the varint;
// Errc::malformed for more than 10 bytes or a value overflowing 64 bits.
Result<UvarintRead> read_uvarint(ByteView in);

void append_be64(Bytes& out, std::uint64_t v);
std::uint64_t load_be64(const std::uint8_t* p);
void append_le64(Bytes& out, std::uint64_t v);
std::uint64_t load_le64(const std::uint8_t* p);

}  // namespace kwaai::p2p::hivemind
