#include "p2p/libp2p/delimited.hpp"

#include <google/protobuf/message_lite.h>

#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p {

void append_delimited(ByteView body, Bytes& out) {
  encode_uvarint(body.size(), out);
  append(out, body);
}

Bytes encode_delimited(ByteView body) {
  Bytes out;
  append_delimited(body, out);
  return out;
}

Result<std::optional<DelimitedView>> decode_delimited(ByteView in, std::size_t max_body) {
  auto len = decode_uvarint(in);
  if (!len) {
    if (len.error().code == Errc::kTruncated) return std::optional<DelimitedView>{};
    return make_error(len.error().code, "message length prefix: " + len.error().message);
  }
  if (len->value > max_body)
    return make_error(Errc::kTooLarge, "message of " + std::to_string(len->value) + " bytes (max " +
                                           std::to_string(max_body) + ")");
  const std::size_t n = static_cast<std::size_t>(len->value);
  if (in.size() - len->size < n) return std::optional<DelimitedView>{};
  return std::optional<DelimitedView>(DelimitedView{in.subspan(len->size, n), len->size + n});
}

Result<std::optional<Bytes>> DelimitedReader::next() {
  auto m = decode_delimited(buf_, max_);
  if (!m) return std::move(m).error();
  if (!*m) return std::optional<Bytes>{};
  Bytes body((*m)->body.begin(), (*m)->body.end());
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>((*m)->size));
  return std::optional<Bytes>(std::move(body));
}

Bytes serialize(const google::protobuf::MessageLite& msg) {
  Bytes out(msg.ByteSizeLong());
  msg.SerializeWithCachedSizesToArray(out.data());
  return out;
}

Bytes serialize_delimited(const google::protobuf::MessageLite& msg) {
  const std::size_t n = msg.ByteSizeLong();
  Bytes out;
  out.reserve(n + kMaxUvarintBytes);
  encode_uvarint(n, out);
  const std::size_t off = out.size();
  out.resize(off + n);
  msg.SerializeWithCachedSizesToArray(out.data() + off);
  return out;
}

Status parse(ByteView bytes, google::protobuf::MessageLite& msg, std::size_t max_body) {
  if (bytes.size() > max_body)
    return make_error(Errc::kTooLarge, msg.GetTypeName() + " of " + std::to_string(bytes.size()) +
                                           " bytes (max " + std::to_string(max_body) + ")");
  // ParsePartial + IsInitialized avoids libprotobuf's error log line per malformed message.
  if (!msg.ParsePartialFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      !msg.IsInitialized())
    return make_error(Errc::kMalformed, msg.GetTypeName() + " does not parse");
  return {};
}

}  // namespace kwaai::p2p::libp2p
