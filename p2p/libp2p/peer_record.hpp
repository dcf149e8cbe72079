// Signed envelopes (RFC 0002) carrying a PeerRecord: identify's optional `signedPeerRecord`
// field. go stores *no* addresses from an identify message whose record fails to validate,
// so a node either sends a correct record or none.
//
// Signature input: uvarint(len(domain)) ‖ domain ‖ uvarint(len(type)) ‖ type ‖
// uvarint(len(payload)) ‖ payload, signed with the identity key.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/crypto/keys.hpp"
#include "p2p/libp2p/multiaddr.hpp"
#include "p2p/libp2p/peer_id.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

// go's core/peer/record.go (RFC 0003 says "libp2p-routing-state"; implementations do not).
inline constexpr std::string_view kPeerRecordDomain = "libp2p-peer-record";
inline const Bytes kPeerRecordPayloadType{0x03, 0x01};
inline constexpr std::size_t kMaxEnvelopeSize = 8 * 1024;  // rides in one identify message

struct SignedEnvelope {
  PublicKey public_key;
  Bytes payload_type;
  Bytes payload;
  Bytes signature;

  static Result<SignedEnvelope> seal(const PrivateKey& key, std::string_view domain,
                                     ByteView payload_type, ByteView payload);
  Bytes encode() const;
  // Parses and verifies the signature for `domain`.
  static Result<SignedEnvelope> open(ByteView bytes, std::string_view domain);
};

struct PeerRecord {
  PeerId peer_id;
  std::uint64_t seq = 0;
  std::vector<Multiaddr> addresses;

  Bytes encode() const;
  // Addresses that do not parse are dropped (as go does), not an error.
  static Result<PeerRecord> decode(ByteView bytes);
};

// Builds the identify signedPeerRecord bytes for this node.
Result<Bytes> seal_peer_record(const PrivateKey& key, const PeerRecord& record);
// Opens and validates a signedPeerRecord: signature, payload type, and that the record's
// peer id belongs to the signing key.
Result<PeerRecord> open_peer_record(ByteView envelope);

}  // namespace kwaai::p2p::libp2p
