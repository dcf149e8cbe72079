// Yamux (/yamux/1.0.0) frame header codec and protocol constants. Session logic (streams,
// flow control, keepalive) lives in the host layer.
//
// Header: version u8 (0) | type u8 | flags u16be | stream id u32be | length u32be.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p::yamux {

inline constexpr std::string_view kProtocolId = "/yamux/1.0.0";
inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::uint8_t kVersion = 0;
inline constexpr std::uint32_t kInitialWindow = 256 * 1024;            // per stream, per direction
inline constexpr std::uint32_t kMaxWindow = 16 * 1024 * 1024;          // go-libp2p/js auto-tune cap
inline constexpr std::size_t kMaxSendFrame = 64 * 1024 - kHeaderSize;  // go's data frame size
inline constexpr std::uint32_t kSessionStreamId = 0;
inline constexpr std::size_t kAcceptBacklog = 256;  // go blocks/RSTs beyond this many un-ACKed
inline constexpr int kKeepaliveIntervalSeconds = 30;
inline constexpr int kKeepaliveTimeoutSeconds = 10;

enum class FrameType : std::uint8_t { kData = 0, kWindowUpdate = 1, kPing = 2, kGoAway = 3 };

namespace flags {
inline constexpr std::uint16_t kSyn = 0x1;
inline constexpr std::uint16_t kAck = 0x2;
inline constexpr std::uint16_t kFin = 0x4;
inline constexpr std::uint16_t kRst = 0x8;
inline constexpr std::uint16_t kAll = kSyn | kAck | kFin | kRst;
}  // namespace flags

enum class GoAwayCode : std::uint32_t { kNormal = 0, kProtocolError = 1, kInternalError = 2 };

struct Header {
  FrameType type = FrameType::kData;
  std::uint16_t flags = 0;
  std::uint32_t stream_id = 0;
  std::uint32_t length =
      0;  // DATA: payload bytes; WINDOW_UPDATE: delta; PING: opaque; GO_AWAY: code

  bool has(std::uint16_t f) const { return (flags & f) != 0; }
  bool operator==(const Header&) const = default;
};

std::array<std::uint8_t, kHeaderSize> encode_header(const Header& h);
void append_header(const Header& h, Bytes& out);

// Validates: ≥ 12 bytes (kTruncated otherwise), version 0, known type, no unknown flag bits,
// PING/GO_AWAY on stream 0, DATA/WINDOW_UPDATE on a non-zero stream. Only the first 12 bytes
// are read. Whether a DATA length fits the receive window is the session's check.
Result<Header> decode_header(ByteView in);

// Convenience constructors for the common frames.
Header data(std::uint32_t stream_id, std::uint32_t length, std::uint16_t flags = 0);
Header window_update(std::uint32_t stream_id, std::uint32_t delta, std::uint16_t flags = 0);
Header ping(std::uint32_t value, bool ack);
Header go_away(GoAwayCode code);

// Client (dialer) streams are odd, server (listener) streams even.
inline bool is_client_stream(std::uint32_t id) {
  return (id & 1u) == 1u;
}

}  // namespace kwaai::p2p::libp2p::yamux
