#include "p2p/libp2p/yamux_frame.hpp"

namespace kwaai::p2p::libp2p::yamux {
namespace {

void put_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put_be32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
std::uint32_t get_be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

}  // namespace

std::array<std::uint8_t, kHeaderSize> encode_header(const Header& h) {
  std::array<std::uint8_t, kHeaderSize> out{};
  out[0] = kVersion;
  out[1] = static_cast<std::uint8_t>(h.type);
  put_be16(&out[2], h.flags);
  put_be32(&out[4], h.stream_id);
  put_be32(&out[8], h.length);
  return out;
}

void append_header(const Header& h, Bytes& out) {
  const auto a = encode_header(h);
  out.insert(out.end(), a.begin(), a.end());
}

Result<Header> decode_header(ByteView in) {
  if (in.size() < kHeaderSize) return make_error(Errc::kTruncated, "yamux header needs 12 bytes");
  if (in[0] != kVersion)
    return make_error(Errc::kProtocol, "yamux version " + std::to_string(in[0]) + " (expected 0)");
  if (in[1] > static_cast<std::uint8_t>(FrameType::kGoAway))
    return make_error(Errc::kProtocol, "yamux frame type " + std::to_string(in[1]));
  Header h;
  h.type = static_cast<FrameType>(in[1]);
  h.flags = static_cast<std::uint16_t>(in[2] << 8 | in[3]);
  h.stream_id = get_be32(&in[4]);
  h.length = get_be32(&in[8]);
  if ((h.flags & ~flags::kAll) != 0)
    return make_error(Errc::kProtocol, "yamux unknown flag bits " + std::to_string(h.flags));
  const bool session_frame = h.type == FrameType::kPing || h.type == FrameType::kGoAway;
  if (session_frame && h.stream_id != kSessionStreamId)
    return make_error(Errc::kProtocol,
                      "yamux ping/go-away on stream " + std::to_string(h.stream_id));
  if (!session_frame && h.stream_id == kSessionStreamId)
    return make_error(Errc::kProtocol, "yamux data/window-update on stream 0");
  return h;
}

Header data(std::uint32_t stream_id, std::uint32_t length, std::uint16_t f) {
  return Header{FrameType::kData, f, stream_id, length};
}
Header window_update(std::uint32_t stream_id, std::uint32_t delta, std::uint16_t f) {
  return Header{FrameType::kWindowUpdate, f, stream_id, delta};
}
Header ping(std::uint32_t value, bool ack) {
  return Header{FrameType::kPing, ack ? flags::kAck : flags::kSyn, kSessionStreamId, value};
}
Header go_away(GoAwayCode code) {
  return Header{FrameType::kGoAway, 0, kSessionStreamId, static_cast<std::uint32_t>(code)};
}

}  // namespace kwaai::p2p::libp2p::yamux
