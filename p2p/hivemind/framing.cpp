#include "p2p/hivemind/framing.hpp"

#include "p2p/hivemind/proto/p2pd.pb.h"

namespace kwaai::p2p::hivemind {
namespace {

Result<Bytes> delimit(const google::protobuf::MessageLite& m, std::size_t max_bytes) {
  const std::size_t n = m.ByteSizeLong();
  Bytes out;
  append_uvarint(out, n);
  if (out.size() + n > max_bytes)
    return make_error(Errc::too_large, "message of " + std::to_string(n) +
                                           " bytes exceeds the limit of " +
                                           std::to_string(max_bytes));
  std::size_t head = out.size();
  out.resize(head + n);
  m.SerializeWithCachedSizesToArray(out.data() + head);
  return out;
}

Result<pb::PersistentConnectionRequest> parse_request(ByteView message) {
  pb::PersistentConnectionRequest req;
  if (!req.ParseFromArray(message.data(), static_cast<int>(message.size())))
    return make_error(Errc::malformed, "not a PersistentConnectionRequest");
  if (req.callid().size() != kCallIdBytes)
    return make_error(Errc::malformed,
                      "callId must be 16 bytes, got " + std::to_string(req.callid().size()));
  return req;
}

// Compacts consumed bytes away once they dominate the buffer.
void compact(Bytes& buf, std::size_t& pos) {
  if (pos > 4096 && pos * 2 > buf.size()) {
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(pos));
    pos = 0;
  }
}

}  // namespace

Result<Bytes> encode_unary_call(const UnaryCall& call, std::size_t max_bytes) {
  if (call.call_id.size() != kCallIdBytes)
    return make_error(Errc::malformed, "callId must be 16 bytes");
  pb::PersistentConnectionRequest req;
  req.set_callid(to_string(call.call_id));
  auto* cu = req.mutable_callunary();
  cu->set_peer(to_string(call.peer));
  cu->set_proto(call.proto);
  cu->set_data(to_string(call.data));
  return delimit(req, max_bytes);
}

Result<Bytes> encode_unary_reply(const UnaryReply& reply, std::size_t max_bytes) {
  if (reply.call_id.size() != kCallIdBytes)
    return make_error(Errc::malformed, "callId must be 16 bytes");
  pb::PersistentConnectionRequest req;
  req.set_callid(to_string(reply.call_id));
  auto* r = req.mutable_unaryresponse();
  // The oneof field is always emitted, even when empty: the Python side checks HasField.
  if (reply.is_error)
    r->set_error(to_string(reply.payload));
  else
    r->set_response(to_string(reply.payload));
  return delimit(req, max_bytes);
}

Result<UnaryCall> parse_unary_call(ByteView message) {
  auto req = parse_request(message);
  if (!req) return req.error();
  if (!req->has_callunary())
    return make_error(Errc::malformed, "PersistentConnectionRequest without callUnary");
  const auto& cu = req->callunary();
  return UnaryCall{to_bytes(req->callid()), to_bytes(cu.peer()), cu.proto(), to_bytes(cu.data())};
}

Result<UnaryReply> parse_unary_reply(ByteView message) {
  auto req = parse_request(message);
  if (!req) return req.error();
  if (!req->has_unaryresponse())
    return make_error(Errc::malformed, "PersistentConnectionRequest without unaryResponse");
  const auto& r = req->unaryresponse();
  if (r.has_response()) return UnaryReply{to_bytes(req->callid()), false, to_bytes(r.response())};
  if (r.has_error()) return UnaryReply{to_bytes(req->callid()), true, to_bytes(r.error())};
  return make_error(Errc::malformed, "unaryResponse carries neither response nor error");
}

void DelimitedDecoder::feed(ByteView bytes) {
  if (failed_) return;
  compact(buf_, pos_);
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Result<std::optional<Bytes>> DelimitedDecoder::next() {
  if (failed_) return *failed_;
  ByteView rest(buf_.data() + pos_, buf_.size() - pos_);
  if (rest.empty()) return std::optional<Bytes>{};
  auto len = read_uvarint(rest);
  if (!len) {
    if (len.error().code == Errc::truncated) return std::optional<Bytes>{};
    failed_ = len.error();
    return *failed_;
  }
  if (len->value > max_) {
    failed_ =
        make_error(Errc::too_large, "delimited message of " + std::to_string(len->value) +
                                        " bytes exceeds the limit of " + std::to_string(max_));
    return *failed_;
  }
  if (rest.size() - len->length < len->value) return std::optional<Bytes>{};
  Bytes msg(rest.begin() + static_cast<std::ptrdiff_t>(len->length),
            rest.begin() + static_cast<std::ptrdiff_t>(len->length + len->value));
  pos_ += len->length + len->value;
  return std::optional<Bytes>(std::move(msg));
}

Bytes encode_stream_frame(FrameMarker marker, ByteView payload) {
  Bytes out;
  out.reserve(kStreamFrameHeaderBytes + payload.size());
  out.push_back(static_cast<std::uint8_t>(marker));
  append_be64(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes encode_error_frame(std::string_view message) {
  pb::RPCError err;
  if (!message.empty()) err.set_message(std::string(message));
  return encode_stream_frame(FrameMarker::error, as_bytes(err.SerializeAsString()));
}

Bytes end_of_stream_frame() {
  return encode_error_frame({});
}

Result<std::string> parse_rpc_error(ByteView payload) {
  pb::RPCError err;
  if (!err.ParseFromArray(payload.data(), static_cast<int>(payload.size())))
    return make_error(Errc::malformed, "error frame payload is not an RPCError");
  return err.message();
}

void StreamFrameDecoder::feed(ByteView bytes) {
  if (failed_) return;
  compact(buf_, pos_);
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Result<std::optional<StreamFrame>> StreamFrameDecoder::next() {
  if (failed_) return *failed_;
  ByteView rest(buf_.data() + pos_, buf_.size() - pos_);
  if (rest.empty()) return std::optional<StreamFrame>{};
  if (rest[0] > 1) {
    failed_ = make_error(Errc::malformed, "invalid stream frame marker " + std::to_string(rest[0]));
    return *failed_;
  }
  if (rest.size() < kStreamFrameHeaderBytes) return std::optional<StreamFrame>{};
  const std::uint64_t len = load_be64(rest.data() + 1);
  if (len > max_) {
    failed_ =
        make_error(Errc::too_large, "stream frame of " + std::to_string(len) +
                                        " bytes exceeds the limit of " + std::to_string(max_));
    return *failed_;
  }
  if (rest.size() - kStreamFrameHeaderBytes < len) return std::optional<StreamFrame>{};
  StreamFrame f;
  f.marker = static_cast<FrameMarker>(rest[0]);
  f.payload.assign(rest.begin() + kStreamFrameHeaderBytes,
                   rest.begin() + static_cast<std::ptrdiff_t>(kStreamFrameHeaderBytes + len));
  pos_ += kStreamFrameHeaderBytes + len;
  return std::optional<StreamFrame>(std::move(f));
}

}  // namespace kwaai::p2p::hivemind
