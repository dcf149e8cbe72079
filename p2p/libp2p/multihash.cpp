#include "p2p/libp2p/multihash.hpp"

#include <sodium.h>

#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p {

std::array<std::uint8_t, 32> sha256(ByteView data) {
  std::array<std::uint8_t, 32> out{};
  crypto_hash_sha256(out.data(), data.data(), data.size());
  return out;
}

Bytes Multihash::encode() const {
  Bytes out;
  encode_uvarint(code, out);
  encode_uvarint(digest.size(), out);
  append(out, digest);
  return out;
}

Multihash multihash_identity(ByteView data) {
  return Multihash{kMultihashIdentity, Bytes(data.begin(), data.end())};
}

Multihash multihash_sha2_256(ByteView data) {
  const auto d = sha256(data);
  return Multihash{kMultihashSha2_256, Bytes(d.begin(), d.end())};
}

Result<Multihash> decode_multihash(ByteView in) {
  auto code = decode_uvarint(in);
  if (!code) return make_error(code.error().code, "multihash code: " + code.error().message);
  auto rest = in.subspan(code->size);
  auto len = decode_uvarint(rest);
  if (!len) return make_error(len.error().code, "multihash length: " + len.error().message);
  rest = rest.subspan(len->size);
  if (len->value != rest.size())
    return make_error(rest.size() < len->value ? Errc::kTruncated : Errc::kMalformed,
                      "multihash digest length " + std::to_string(len->value) + " but " +
                          std::to_string(rest.size()) + " bytes follow");
  if (code->value == kMultihashIdentity) {
    if (rest.size() > kMaxIdentityMultihashDigest)
      return make_error(Errc::kTooLarge, "identity multihash longer than " +
                                             std::to_string(kMaxIdentityMultihashDigest));
  } else if (code->value == kMultihashSha2_256) {
    if (rest.size() != 32) return make_error(Errc::kMalformed, "sha2-256 digest is not 32 bytes");
  } else {
    return make_error(Errc::kUnsupported, "multihash code " + std::to_string(code->value));
  }
  return Multihash{code->value, Bytes(rest.begin(), rest.end())};
}

}  // namespace kwaai::p2p::libp2p
