#include "p2p/libp2p/peer_record.hpp"

#include "p2p/libp2p/delimited.hpp"
#include "p2p/libp2p/proto/envelope.pb.h"
#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p {
namespace {

Bytes signing_input(std::string_view domain, ByteView type, ByteView payload) {
  Bytes out;
  out.reserve(domain.size() + type.size() + payload.size() + 3 * kMaxUvarintBytes);
  append_delimited(as_bytes(domain), out);
  append_delimited(type, out);
  append_delimited(payload, out);
  return out;
}

ByteView view(const std::string& s) {
  return as_bytes(s);
}

}  // namespace

Result<SignedEnvelope> SignedEnvelope::seal(const PrivateKey& key, std::string_view domain,
                                            ByteView payload_type, ByteView payload) {
  auto sig = key.sign(signing_input(domain, payload_type, payload));
  if (!sig) return std::move(sig).error();
  return SignedEnvelope{key.public_key(), Bytes(payload_type.begin(), payload_type.end()),
                        Bytes(payload.begin(), payload.end()), std::move(*sig)};
}

Bytes SignedEnvelope::encode() const {
  pb::Envelope e;
  const Bytes pk = public_key.to_protobuf();
  e.set_public_key(pk.data(), pk.size());
  e.set_payload_type(payload_type.data(), payload_type.size());
  e.set_payload(payload.data(), payload.size());
  e.set_signature(signature.data(), signature.size());
  return serialize(e);
}

Result<SignedEnvelope> SignedEnvelope::open(ByteView bytes, std::string_view domain) {
  pb::Envelope e;
  if (auto st = parse(bytes, e, kMaxEnvelopeSize); !st)
    return make_error(st.error().code, "signed envelope: " + st.error().message);
  auto key = PublicKey::from_protobuf(view(e.public_key()));
  if (!key) return make_error(key.error().code, "signed envelope key: " + key.error().message);
  SignedEnvelope env{std::move(*key), Bytes(e.payload_type().begin(), e.payload_type().end()),
                     Bytes(e.payload().begin(), e.payload().end()),
                     Bytes(e.signature().begin(), e.signature().end())};
  if (auto st = env.public_key.verify(signing_input(domain, env.payload_type, env.payload),
                                      env.signature);
      !st)
    return make_error(Errc::kBadSignature, "signed envelope: signature does not verify");
  return env;
}

Bytes PeerRecord::encode() const {
  pb::PeerRecord r;
  r.set_peer_id(peer_id.bytes().data(), peer_id.bytes().size());
  r.set_seq(seq);
  for (const auto& a : addresses) {
    const Bytes b = a.to_bytes();
    r.add_addresses()->set_multiaddr(b.data(), b.size());
  }
  return serialize(r);
}

Result<PeerRecord> PeerRecord::decode(ByteView bytes) {
  pb::PeerRecord r;
  if (auto st = parse(bytes, r, kMaxEnvelopeSize); !st)
    return make_error(st.error().code, "peer record: " + st.error().message);
  auto id = PeerId::from_bytes(view(r.peer_id()));
  if (!id) return make_error(id.error().code, "peer record: " + id.error().message);
  PeerRecord rec{std::move(*id), r.seq(), {}};
  for (const auto& a : r.addresses()) {
    if (auto ma = Multiaddr::from_bytes(view(a.multiaddr())); ma.ok())
      rec.addresses.push_back(std::move(*ma));
  }
  return rec;
}

Result<Bytes> seal_peer_record(const PrivateKey& key, const PeerRecord& record) {
  if (!record.peer_id.matches(key.public_key()))
    return make_error(Errc::kState, "peer record: peer id does not belong to the signing key");
  auto env = SignedEnvelope::seal(key, kPeerRecordDomain, kPeerRecordPayloadType, record.encode());
  if (!env) return std::move(env).error();
  return env->encode();
}

Result<PeerRecord> open_peer_record(ByteView envelope) {
  auto env = SignedEnvelope::open(envelope, kPeerRecordDomain);
  if (!env) return std::move(env).error();
  if (env->payload_type != kPeerRecordPayloadType)
    return make_error(Errc::kProtocol, "signed envelope: payload type is not a peer record");
  auto rec = PeerRecord::decode(env->payload);
  if (!rec) return rec;
  if (!rec->peer_id.matches(env->public_key))
    return make_error(Errc::kPeerIdMismatch, "peer record: peer id is not the signer's");
  return rec;
}

}  // namespace kwaai::p2p::libp2p
