#include "p2p/libp2p/multistream.hpp"

#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p::multistream {

Status encode_message(std::string_view text, Bytes& out) {
  if (text.size() + 1 > kMaxMessageLength)
    return make_error(Errc::kTooLarge, "multistream message longer than 1023 bytes");
  if (text.find('\n') != std::string_view::npos)
    return make_error(Errc::kMalformed, "multistream message contains a newline");
  encode_uvarint(text.size() + 1, out);
  append(out, as_bytes(text));
  out.push_back('\n');
  return {};
}

Bytes encode_message(std::string_view text) {
  Bytes out;
  if (!encode_message(text, out)) return {};
  return out;
}

Result<std::optional<DecodedMessage>> decode_message(ByteView in, std::size_t max_length) {
  auto len = decode_uvarint(in);
  if (!len) {
    if (len.error().code == Errc::kTruncated) return std::optional<DecodedMessage>{};
    return make_error(len.error().code, "multistream length: " + len.error().message);
  }
  if (len->value > max_length)
    return make_error(Errc::kTooLarge, "multistream message of " + std::to_string(len->value) +
                                           " bytes (max " + std::to_string(max_length) + ")");
  if (len->value == 0) return make_error(Errc::kMalformed, "empty multistream message");
  const std::size_t n = static_cast<std::size_t>(len->value);
  if (in.size() - len->size < n) return std::optional<DecodedMessage>{};
  const ByteView body = in.subspan(len->size, n);
  if (body.back() != '\n')
    return make_error(Errc::kMalformed, "multistream message does not end in a newline");
  const std::string_view text = as_chars(body.first(n - 1));
  if (text.find('\n') != std::string_view::npos)
    return make_error(Errc::kMalformed, "multistream message contains an inner newline");
  return std::optional<DecodedMessage>(DecodedMessage{std::string(text), len->size + n});
}

Bytes encode_ls_response(const std::vector<std::string>& protocols) {
  Bytes inner;
  for (const auto& p : protocols) (void)encode_message(p, inner);
  inner.push_back('\n');
  Bytes out;
  encode_uvarint(inner.size(), out);
  append(out, inner);
  return out;
}

Result<std::vector<std::string>> decode_ls_response(ByteView in) {
  // Bounded by what can be sent in one listing: protocols × 1 KiB each.
  constexpr std::size_t kMaxLs = kMaxProposals * kMaxMessageLength;
  auto len = decode_uvarint(in);
  if (!len) return make_error(len.error().code, "ls length: " + len.error().message);
  if (len->value > kMaxLs) return make_error(Errc::kTooLarge, "ls response too large");
  if (in.size() - len->size != len->value)
    return make_error(Errc::kMalformed, "ls response length does not match the bytes given");
  ByteView body = in.subspan(len->size);
  if (body.empty() || body.back() != '\n')
    return make_error(Errc::kMalformed, "ls response does not end in a newline");
  body = body.first(body.size() - 1);
  std::vector<std::string> out;
  while (!body.empty()) {
    auto m = decode_message(body);
    if (!m) return std::move(m).error();
    if (!*m) return make_error(Errc::kTruncated, "ls entry truncated");
    out.push_back(std::move((*m)->text));
    body = body.subspan((*m)->size);
  }
  return out;
}

Result<std::optional<std::string>> MessageReader::next() {
  auto m = decode_message(buf_, max_);
  if (!m) return std::move(m).error();
  if (!*m) return std::optional<std::string>{};
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>((*m)->size));
  return std::optional<std::string>(std::move((*m)->text));
}

Bytes MessageReader::take_rest() {
  Bytes rest;
  rest.swap(buf_);
  return rest;
}

// ---- Initiator -------------------------------------------------------------------------

Initiator::Initiator(std::vector<std::string> protocols) : protocols_(std::move(protocols)) {}

Result<Progress> Initiator::start() {
  if (started_) return make_error(Errc::kState, "multistream initiator already started");
  if (protocols_.empty()) return make_error(Errc::kState, "multistream initiator: no protocols");
  if (protocols_.size() > kMaxProposals)
    return make_error(Errc::kTooLarge, "multistream initiator: too many protocols");
  started_ = true;
  Progress p;
  if (auto st = encode_message(kProtocolId, p.to_send); !st) return std::move(st).error();
  if (auto st = encode_message(protocols_[0], p.to_send); !st) return std::move(st).error();
  return p;
}

Result<Progress> Initiator::on_data(ByteView data) {
  if (!started_ || done_) return make_error(Errc::kState, "multistream initiator not negotiating");
  reader_.feed(data);
  Progress p;
  while (!done_) {
    auto msg = reader_.next();
    if (!msg) return std::move(msg).error();
    if (!*msg) break;
    const std::string& text = **msg;
    if (!header_seen_) {
      if (text != kProtocolId)
        return make_error(Errc::kProtocol, "multistream: unexpected header '" + text + "'");
      header_seen_ = true;
      continue;
    }
    if (text == protocols_[index_]) {
      done_ = true;
      p.done = true;
      p.selected = text;
      p.leftover = reader_.take_rest();
      break;
    }
    if (text != kNa)
      return make_error(Errc::kProtocol, "multistream: expected '" + protocols_[index_] +
                                             "' or na, got '" + text + "'");
    if (++index_ >= protocols_.size())
      return make_error(Errc::kNegotiationFailed, "multistream: peer supports none of the " +
                                                      std::to_string(protocols_.size()) +
                                                      " proposed protocols");
    if (auto st = encode_message(protocols_[index_], p.to_send); !st) return std::move(st).error();
  }
  return p;
}

// ---- Responder -------------------------------------------------------------------------

Responder::Responder(std::function<bool(std::string_view)> supported, std::vector<std::string> list)
    : supported_(std::move(supported)), list_(std::move(list)) {}

Responder::Responder(std::vector<std::string> protocols)
    : supported_([protocols](std::string_view p) {
        for (const auto& s : protocols)
          if (s == p) return true;
        return false;
      }),
      list_(protocols) {}

Result<Progress> Responder::on_data(ByteView data) {
  if (done_) return make_error(Errc::kState, "multistream responder already done");
  reader_.feed(data);
  Progress p;
  while (!done_) {
    auto msg = reader_.next();
    if (!msg) return std::move(msg).error();
    if (!*msg) break;
    const std::string& text = **msg;
    if (!header_seen_) {
      if (text != kProtocolId)
        return make_error(Errc::kProtocol, "multistream: unexpected header '" + text + "'");
      header_seen_ = true;
      if (auto st = encode_message(kProtocolId, p.to_send); !st) return std::move(st).error();
      continue;
    }
    if (++proposals_ > kMaxProposals)
      return make_error(Errc::kTooLarge, "multistream: more than 64 proposals");
    if (text == kLs) {
      append(p.to_send, encode_ls_response(list_));
    } else if (text != kNa && supported_(text)) {
      (void)encode_message(text, p.to_send);
      done_ = true;
      p.done = true;
      p.selected = text;
      p.leftover = reader_.take_rest();
    } else {
      (void)encode_message(kNa, p.to_send);
    }
  }
  return p;
}

}  // namespace kwaai::p2p::libp2p::multistream
