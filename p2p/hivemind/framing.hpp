// hivemind RPC framing over libp2p streams (spec §2.2–2.3), as pure encoders and incremental
// decoders: the caller feeds whatever bytes the stream produced and pulls complete messages.
//
// * Unary handlers (p2pd "persistent connection" protocol): one uvarint-delimited
//   PersistentConnectionRequest each way — callUnary{peer, proto, data} from the caller,
//   unaryResponse{response | error} back, both carrying the same 16-byte callId.
// * Streaming handlers: frames of marker (0 = message, 1 = error) ‖ 8-byte big-endian length ‖
//   payload. The caller's END_OF_STREAM is an error frame with an empty RPCError.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/result.hpp"

namespace kwaai::p2p::hivemind {

inline constexpr std::size_t kUnaryMaxMessageBytes = 4u << 20;  // p2pd persistentConnMaxMsgSize
inline constexpr std::size_t kCallIdBytes = 16;

struct UnaryCall {
  Bytes call_id;      // 16 bytes (uuid4)
  Bytes peer;         // on the wire: the *target's* PeerID multihash bytes
  std::string proto;  // handler name, e.g. "DHTProtocol.rpc_ping"; must equal the stream protocol
  Bytes data;         // serialized request protobuf
};

struct UnaryReply {
  Bytes call_id;
  bool is_error = false;
  Bytes payload;  // serialized response, or the error text (Python repr of the exception)
};

// Each encoder returns the complete delimited message (uvarint length included) or
// Errc::too_large when it would exceed `max_bytes` (hivemind refuses to send those too).
Result<Bytes> encode_unary_call(const UnaryCall& call,
                                std::size_t max_bytes = kUnaryMaxMessageBytes);
Result<Bytes> encode_unary_reply(const UnaryReply& reply,
                                 std::size_t max_bytes = kUnaryMaxMessageBytes);

// Parse one PersistentConnectionRequest body (length prefix already removed).
Result<UnaryCall> parse_unary_call(ByteView message);
Result<UnaryReply> parse_unary_reply(ByteView message);

// Incremental reader of uvarint-delimited messages with a size limit. After an error the decoder
// stays failed (the stream must be closed).
class DelimitedDecoder {
 public:
  explicit DelimitedDecoder(std::size_t max_message_bytes = kUnaryMaxMessageBytes)
      : max_(max_message_bytes) {}
  void feed(ByteView bytes);
  // A complete message, std::nullopt when more bytes are needed, or the error.
  Result<std::optional<Bytes>> next();
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::size_t max_;
  Bytes buf_;
  std::size_t pos_ = 0;
  std::optional<Error> failed_;
};

enum class FrameMarker : std::uint8_t { message = 0, error = 1 };

struct StreamFrame {
  FrameMarker marker = FrameMarker::message;
  Bytes payload;
};

inline constexpr std::size_t kStreamFrameHeaderBytes = 9;
// hivemind reads frames of any length; we bound them. Petals sends whole inference steps in one
// message (not split), so the default leaves room for large prefill activations.
inline constexpr std::size_t kDefaultMaxStreamFrameBytes = 256u << 20;

Bytes encode_stream_frame(FrameMarker marker, ByteView payload);
// An error frame carrying RPCError{message}.
Bytes encode_error_frame(std::string_view message);
// END_OF_STREAM: an error frame with an empty RPCError (01 00000000 00000000).
Bytes end_of_stream_frame();
// RPCError.message of an error frame's payload.
Result<std::string> parse_rpc_error(ByteView payload);

class StreamFrameDecoder {
 public:
  explicit StreamFrameDecoder(std::size_t max_frame_bytes = kDefaultMaxStreamFrameBytes)
      : max_(max_frame_bytes) {}
  void feed(ByteView bytes);
  Result<std::optional<StreamFrame>> next();
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::size_t max_;
  Bytes buf_;
  std::size_t pos_ = 0;
  std::optional<Error> failed_;
};

}  // namespace kwaai::p2p::hivemind
