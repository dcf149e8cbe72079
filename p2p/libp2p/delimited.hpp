// Length-prefixed ("delimited") messages: uvarint(len) ‖ body, as identify, kad, relay and
// the p2pd unary protocol use. Every reader takes an explicit maximum body size.
#pragma once

#include <cstddef>
#include <optional>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

namespace google::protobuf {
class MessageLite;
}

namespace kwaai::p2p::libp2p {

inline constexpr std::size_t kIdentifyMaxMessage = 8 * 1024;         // go and js
inline constexpr std::size_t kIdentifyMaxMessages = 10;              // go merges at most 10
inline constexpr std::size_t kKadMaxMessage = std::size_t{1} << 22;  // network.MessageSizeMax
inline constexpr std::size_t kRelayMaxMessage = 4096;

void append_delimited(ByteView body, Bytes& out);
Bytes encode_delimited(ByteView body);

struct DelimitedView {
  ByteView body;     // points into the input
  std::size_t size;  // prefix + body bytes consumed
};
// nullopt = need more bytes; kTooLarge when the declared length exceeds max_body (checked as
// soon as the prefix is complete, before the body arrives).
Result<std::optional<DelimitedView>> decode_delimited(ByteView in, std::size_t max_body);

class DelimitedReader {
 public:
  explicit DelimitedReader(std::size_t max_body) : max_(max_body) {}
  void feed(ByteView data) { append(buf_, data); }
  Result<std::optional<Bytes>> next();
  std::size_t buffered() const { return buf_.size(); }

 private:
  std::size_t max_;
  Bytes buf_;
};

// Protobuf helpers (any generated message, e.g. p2p/libp2p/proto/identify.pb.h).
Bytes serialize(const google::protobuf::MessageLite& msg);
Bytes serialize_delimited(const google::protobuf::MessageLite& msg);
// kMalformed when the bytes do not parse (or miss proto2 required fields); kTooLarge past max.
Status parse(ByteView bytes, google::protobuf::MessageLite& msg, std::size_t max_body);

}  // namespace kwaai::p2p::libp2p
