// Byte buffer vocabulary shared by every libp2p codec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kwaai::p2p::libp2p {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline void append(Bytes& out, ByteView b) {
  out.insert(out.end(), b.begin(), b.end());
}

// Lower-case hex, for logs and test vectors.
std::string to_hex(ByteView b);
// Accepts upper or lower case; nullopt on odd length or a non-hex digit.
std::optional<Bytes> from_hex(std::string_view s);

}  // namespace kwaai::p2p::libp2p
