// multistream-select 1.0 (/multistream/1.0.0): message codec and IO-free negotiators.
//
// A message is uvarint(N) ‖ text ‖ '\n' where N counts the newline. The negotiators consume
// received bytes and return bytes to send; the caller owns the socket/stream. Both tolerate
// pipelining: any bytes after the accepted protocol line are handed back as `leftover` and
// belong to the selected protocol.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p::multistream {

inline constexpr std::string_view kProtocolId = "/multistream/1.0.0";
inline constexpr std::string_view kNa = "na";
inline constexpr std::string_view kLs = "ls";
// go ErrTooLarge / js MAX_PROTOCOL_LENGTH: N (text + '\n') ≤ 1024.
inline constexpr std::size_t kMaxMessageLength = 1024;
// A negotiation that needs more proposals than this is abusive (each costs a round trip).
inline constexpr std::size_t kMaxProposals = 64;

// Appends uvarint(len+1) ‖ text ‖ '\n'. Text must not contain '\n' and must fit the limit.
Status encode_message(std::string_view text, Bytes& out);
Bytes encode_message(std::string_view text);

struct DecodedMessage {
  std::string text;  // without the trailing '\n'
  std::size_t size;  // bytes consumed
};
// Decodes one message from the front of `in`. nullopt = need more bytes. Errors: kTooLarge
// (N > max_length), kMalformed (N == 0, missing '\n', '\n' inside the text).
Result<std::optional<DecodedMessage>> decode_message(ByteView in,
                                                     std::size_t max_length = kMaxMessageLength);

// js-style `ls` response: uvarint(total) ‖ (uvarint(len+1) ‖ proto ‖ '\n')* ‖ '\n'.
Bytes encode_ls_response(const std::vector<std::string>& protocols);
Result<std::vector<std::string>> decode_ls_response(ByteView in);

// Incremental reader over a byte stream.
class MessageReader {
 public:
  explicit MessageReader(std::size_t max_length = kMaxMessageLength) : max_(max_length) {}
  void feed(ByteView data) { append(buf_, data); }
  // Next complete message, nullopt if more bytes are needed.
  Result<std::optional<std::string>> next();
  // Bytes received but not yet consumed as messages.
  Bytes take_rest();
  std::size_t buffered() const { return buf_.size(); }

 private:
  std::size_t max_;
  Bytes buf_;
};

struct Progress {
  Bytes to_send;  // write these (may be empty)
  bool done = false;
  std::string selected;  // valid when done
  Bytes leftover;        // when done: bytes that already belong to the selected protocol
};

// Dialer: proposes protocols in order until one is echoed. start() yields the header and the
// first proposal in one write (never wait for the responder's header: js waits for ours).
class Initiator {
 public:
  explicit Initiator(std::vector<std::string> protocols);
  Result<Progress> start();
  // Feed bytes read from the stream. Fails with kNegotiationFailed after the last `na`.
  Result<Progress> on_data(ByteView data);
  bool done() const { return done_; }

 private:
  std::vector<std::string> protocols_;
  std::size_t index_ = 0;
  bool started_ = false;
  bool header_seen_ = false;
  bool done_ = false;
  MessageReader reader_;
};

// Listener: answers each proposal with an echo (accept) or `na`; `ls` gets the list.
// Its header is sent after the dialer's header arrived (works with go, js and lazy dialers).
class Responder {
 public:
  // `supported` decides acceptance; `list` is what `ls` reports (may be empty).
  Responder(std::function<bool(std::string_view)> supported, std::vector<std::string> list = {});
  explicit Responder(std::vector<std::string> protocols);
  Result<Progress> on_data(ByteView data);
  bool done() const { return done_; }

 private:
  std::function<bool(std::string_view)> supported_;
  std::vector<std::string> list_;
  std::size_t proposals_ = 0;
  bool header_seen_ = false;
  bool done_ = false;
  MessageReader reader_;
};

}  // namespace kwaai::p2p::libp2p::multistream
