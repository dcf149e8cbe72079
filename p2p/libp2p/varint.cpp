#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p {

void encode_uvarint(std::uint64_t value, Bytes& out) {
  while (value >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(value));
}

Bytes encode_uvarint(std::uint64_t value) {
  Bytes out;
  encode_uvarint(value, out);
  return out;
}

std::size_t uvarint_size(std::uint64_t value) {
  std::size_t n = 1;
  while (value >= 0x80) value >>= 7, ++n;
  return n;
}

Result<UvarintDecoded> decode_uvarint(ByteView in) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i >= kMaxUvarintBytes) return make_error(Errc::kTooLarge, "uvarint longer than 9 bytes");
    const std::uint8_t b = in[i];
    value |= std::uint64_t{b & 0x7fu} << (7 * i);
    if ((b & 0x80) == 0) {
      // A zero final group after the first byte means a shorter encoding existed.
      if (b == 0 && i > 0) return make_error(Errc::kMalformed, "non-minimal uvarint");
      return UvarintDecoded{value, i + 1};
    }
  }
  if (in.size() >= kMaxUvarintBytes)
    return make_error(Errc::kTooLarge, "uvarint longer than 9 bytes");
  return make_error(Errc::kTruncated, "uvarint ends early");
}

}  // namespace kwaai::p2p::libp2p
