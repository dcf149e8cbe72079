// The libp2p layer over Noise XX: signed handshake payloads, early muxer negotiation,
// the handshake driver, transport encryption and u16be framing.
#include <sodium.h>

#include <algorithm>

#include "p2p/libp2p/noise.hpp"
#include "p2p/libp2p/proto/noise.pb.h"

namespace kwaai::p2p::libp2p::noise {
namespace {

Bytes signed_message(const Key32& static_public) {
  Bytes msg(kSignaturePrefix.size() + static_public.size());
  std::copy(kSignaturePrefix.begin(), kSignaturePrefix.end(), msg.begin());
  std::copy(static_public.begin(), static_public.end(),
            msg.begin() + static_cast<std::ptrdiff_t>(kSignaturePrefix.size()));
  return msg;
}

}  // namespace

// ---- payload ---------------------------------------------------------------------------

Bytes HandshakePayload::encode() const {
  pb::NoiseHandshakePayload msg;
  msg.set_identity_key(identity_key.data(), identity_key.size());
  msg.set_identity_sig(identity_sig.data(), identity_sig.size());
  if (has_extensions) {
    auto* ext = msg.mutable_extensions();
    for (const auto& h : webtransport_certhashes)
      ext->add_webtransport_certhashes(h.data(), h.size());
    for (const auto& m : stream_muxers) ext->add_stream_muxers(m);
  }
  Bytes out(msg.ByteSizeLong());
  msg.SerializeWithCachedSizesToArray(out.data());
  return out;
}

Result<HandshakePayload> HandshakePayload::decode(ByteView bytes) {
  if (bytes.size() > kMaxHandshakePayload)
    return make_error(Errc::kTooLarge,
                      "noise payload of " + std::to_string(bytes.size()) + " bytes");
  pb::NoiseHandshakePayload msg;
  if (!msg.ParsePartialFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return make_error(Errc::kMalformed, "noise payload does not parse");
  HandshakePayload p;
  p.identity_key.assign(msg.identity_key().begin(), msg.identity_key().end());
  p.identity_sig.assign(msg.identity_sig().begin(), msg.identity_sig().end());
  if (msg.has_extensions()) {
    p.has_extensions = true;
    const auto& ext = msg.extensions();
    if (static_cast<std::size_t>(ext.stream_muxers_size()) > kMaxStreamMuxers)
      return make_error(Errc::kTooLarge, "noise payload: more than 100 stream muxers");
    for (const auto& m : ext.stream_muxers()) p.stream_muxers.push_back(m);
    for (const auto& h : ext.webtransport_certhashes())
      p.webtransport_certhashes.emplace_back(h.begin(), h.end());
  }
  return p;
}

Result<HandshakePayload> make_payload(const PrivateKey& identity, const Key32& static_public,
                                      const std::optional<std::vector<std::string>>& muxers) {
  HandshakePayload p;
  p.identity_key = identity.public_key().to_protobuf();
  auto sig = identity.sign(signed_message(static_public));
  if (!sig) return std::move(sig).error();
  p.identity_sig = std::move(*sig);
  if (muxers) {
    p.has_extensions = true;
    p.stream_muxers = *muxers;
  }
  return p;
}

Result<PublicKey> verify_payload(const HandshakePayload& payload, const Key32& remote_static) {
  if (payload.identity_key.empty())
    return make_error(Errc::kProtocol, "noise payload carries no identity key");
  auto key = PublicKey::from_protobuf(payload.identity_key);
  if (!key)
    return make_error(key.error().code, "noise payload identity key: " + key.error().message);
  if (auto st = key->verify(signed_message(remote_static), payload.identity_sig); !st)
    return make_error(Errc::kBadSignature,
                      "noise payload: identity signature over the static key does not verify");
  return key;
}

Result<std::optional<std::string>> select_early_muxer(
    const std::optional<std::vector<std::string>>& initiator,
    const std::optional<std::vector<std::string>>& responder) {
  if (!initiator || !responder || initiator->empty() || responder->empty())
    return std::optional<std::string>{};
  for (const auto& m : *initiator)
    if (std::find(responder->begin(), responder->end(), m) != responder->end())
      return std::optional<std::string>(m);
  return make_error(Errc::kNegotiationFailed, "noise: no common stream muxer");
}

// ---- transport -------------------------------------------------------------------------

Result<Bytes> NoiseSession::encrypt_frames(ByteView plaintext) {
  Bytes out;
  out.reserve(plaintext.size() + (plaintext.size() / kMaxPlaintextLength + 1) * (2 + kTagLength));
  do {
    const std::size_t n = std::min(plaintext.size(), kMaxPlaintextLength);
    auto c = send_.encrypt_with_ad({}, plaintext.first(n));
    if (!c) return c;
    if (auto st = append_frame(*c, out); !st) return std::move(st).error();
    plaintext = plaintext.subspan(n);
  } while (!plaintext.empty());
  return out;
}

Result<Bytes> NoiseSession::decrypt_frame(ByteView body) {
  if (body.size() > kMaxFrameLength) return make_error(Errc::kTooLarge, "noise frame > 65535");
  return recv_.decrypt_with_ad({}, body);
}

// ---- handshake driver ------------------------------------------------------------------

NoiseHandshake::NoiseHandshake(Role role, PrivateKey identity, HandshakeOptions options)
    : role_(role),
      identity_(std::move(identity)),
      options_(std::move(options)),
      hs_(role, options_.static_key ? *options_.static_key : X25519Keypair::generate(),
          options_.ephemeral_key) {}

Result<Bytes> NoiseHandshake::next_message() {
  if (failed_) return make_error(Errc::kState, "noise handshake already failed");
  if (!hs_.is_my_turn()) return make_error(Errc::kState, "noise handshake: not our turn");
  Bytes payload;
  if (hs_.message_index() > 0) {  // msg1 carries no payload
    auto p = make_payload(identity_, hs_.local_static().public_key, options_.stream_muxers);
    if (!p) {
      failed_ = true;
      return std::move(p).error();
    }
    payload = p->encode();
  }
  auto msg = hs_.write_message(payload);
  if (!msg) failed_ = true;
  return msg;
}

Status NoiseHandshake::on_message(ByteView message) {
  if (failed_) return make_error(Errc::kState, "noise handshake already failed");
  if (hs_.complete() || hs_.is_my_turn())
    return make_error(Errc::kState, "noise handshake: not expecting a message");
  if (message.size() > kMaxFrameLength) {
    failed_ = true;
    return make_error(Errc::kTooLarge, "noise handshake message > 65535");
  }
  const int index = hs_.message_index();
  auto payload = hs_.read_message(message);
  if (!payload) {
    failed_ = true;
    return std::move(payload).error();
  }
  if (index == 0) return {};  // msg1: the initiator's ephemeral key only
  auto fail = [&](Error e) {
    failed_ = true;
    return Status(std::move(e));
  };
  auto decoded = HandshakePayload::decode(*payload);
  if (!decoded) return fail(std::move(decoded).error());
  auto key = verify_payload(*decoded, *hs_.remote_static());
  if (!key) return fail(std::move(key).error());
  if (options_.expected_peer && !options_.expected_peer->matches(*key))
    return fail(make_error(Errc::kPeerIdMismatch,
                           "noise: dialed " + options_.expected_peer->to_string() +
                               " but peer is " + PeerId::from_public_key(*key).to_string()));
  remote_key_ = std::move(*key);
  if (decoded->has_extensions) remote_muxers_ = decoded->stream_muxers;
  return {};
}

Result<HandshakeResult> NoiseHandshake::result() const {
  if (failed_) return make_error(Errc::kState, "noise handshake failed");
  if (!hs_.complete() || !remote_key_)
    return make_error(Errc::kState, "noise handshake not complete");
  if (result_taken_) return make_error(Errc::kState, "noise handshake result already taken");
  auto split = hs_.split();
  if (!split) return std::move(split).error();
  const auto& ours = options_.stream_muxers;
  auto early = role_ == Role::kInitiator ? select_early_muxer(ours, remote_muxers_)
                                         : select_early_muxer(remote_muxers_, ours);
  if (!early) return std::move(early).error();
  result_taken_ = true;
  return HandshakeResult{NoiseSession(split->first, split->second),
                         *remote_key_,
                         PeerId::from_public_key(*remote_key_),
                         remote_muxers_,
                         std::move(*early),
                         hs_.handshake_hash()};
}

// ---- framing ---------------------------------------------------------------------------

Status append_frame(ByteView body, Bytes& out) {
  if (body.size() > kMaxFrameLength)
    return make_error(Errc::kTooLarge,
                      "noise frame body of " + std::to_string(body.size()) + " bytes (max 65535)");
  out.push_back(static_cast<std::uint8_t>(body.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(body.size() & 0xff));
  append(out, body);
  return {};
}

std::optional<Bytes> FrameReader::next() {
  const std::size_t avail = buf_.size() - pos_;
  if (avail < 2) return std::nullopt;
  const std::size_t len = std::size_t{buf_[pos_]} << 8 | buf_[pos_ + 1];
  if (avail < 2 + len) return std::nullopt;
  Bytes body(buf_.begin() + static_cast<std::ptrdiff_t>(pos_ + 2),
             buf_.begin() + static_cast<std::ptrdiff_t>(pos_ + 2 + len));
  pos_ += 2 + len;
  // Compact once the consumed prefix dominates, so the buffer stays ~one frame.
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536 && pos_ * 2 > buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  return body;
}

Bytes FrameReader::take_rest() {
  Bytes rest(buf_.begin() + static_cast<std::ptrdiff_t>(pos_), buf_.end());
  buf_.clear();
  pos_ = 0;
  return rest;
}

}  // namespace kwaai::p2p::libp2p::noise
