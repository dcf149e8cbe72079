#include "p2p/libp2p/peer_id.hpp"

#include <string>

#include "p2p/libp2p/multibase.hpp"
#include "p2p/libp2p/multihash.hpp"
#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p {

PeerId PeerId::from_public_key(const PublicKey& key) {
  const Bytes proto = key.to_protobuf();
  const Multihash mh = proto.size() <= kMaxInlinePublicKeyLength ? multihash_identity(proto)
                                                                 : multihash_sha2_256(proto);
  return PeerId(mh.encode());
}

Result<PeerId> PeerId::from_bytes(ByteView bytes) {
  auto mh = decode_multihash(bytes);
  if (!mh) return make_error(mh.error().code, "peer id: " + mh.error().message);
  if (mh->code == kMultihashIdentity) {
    if (mh->digest.size() > kMaxInlinePublicKeyLength)
      return make_error(Errc::kMalformed, "peer id: identity multihash longer than 42 bytes");
    auto key = PublicKey::from_protobuf(mh->digest);
    if (!key) return make_error(key.error().code, "peer id: inlined key: " + key.error().message);
  }
  return PeerId(Bytes(bytes.begin(), bytes.end()));
}

Result<PeerId> PeerId::from_string(std::string_view text) {
  if (text.empty()) return make_error(Errc::kMalformed, "peer id: empty string");
  if (text[0] == '1' || text.starts_with("Qm")) {
    auto raw = base58btc_decode(text);
    if (!raw) return make_error(raw.error().code, "peer id: " + raw.error().message);
    return from_bytes(*raw);
  }
  if (text[0] != 'b')
    return make_error(Errc::kUnsupported, "peer id: only base58btc and base32 CIDs are supported");
  auto raw = base32_lower_decode(text.substr(1));
  if (!raw) return make_error(raw.error().code, "peer id CID: " + raw.error().message);
  ByteView rest(*raw);
  auto version = decode_uvarint(rest);
  if (!version || version->value != kCidV1)
    return make_error(Errc::kMalformed, "peer id CID: not CIDv1");
  rest = rest.subspan(version->size);
  auto codec = decode_uvarint(rest);
  if (!codec || codec->value != kMulticodecLibp2pKey)
    return make_error(Errc::kMalformed, "peer id CID: codec is not libp2p-key (0x72)");
  return from_bytes(rest.subspan(codec->size));
}

std::string PeerId::to_base58() const {
  return base58btc_encode(multihash_);
}

std::string PeerId::to_cid_string() const {
  Bytes cid;
  encode_uvarint(kCidV1, cid);
  encode_uvarint(kMulticodecLibp2pKey, cid);
  append(cid, multihash_);
  std::string out = "b";  // multibase prefix of base32 lower, no padding
  out += base32_lower_encode(cid);
  return out;
}

std::optional<PublicKey> PeerId::inline_public_key() const {
  auto mh = decode_multihash(multihash_);
  if (!mh || mh->code != kMultihashIdentity) return std::nullopt;
  auto key = PublicKey::from_protobuf(mh->digest);
  if (!key) return std::nullopt;
  return std::move(key).value();
}

bool PeerId::matches(const PublicKey& key) const {
  return from_public_key(key) == *this;
}

}  // namespace kwaai::p2p::libp2p

std::size_t std::hash<kwaai::p2p::libp2p::PeerId>::operator()(
    const kwaai::p2p::libp2p::PeerId& id) const noexcept {
  // The tail of a multihash is a hash or a public key: well distributed already.
  std::size_t h = 1469598103934665603ull;
  for (std::uint8_t b : id.bytes()) h = (h ^ b) * 1099511628211ull;
  return h;
}
