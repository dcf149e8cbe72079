#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::kTruncated:
      return "truncated";
    case Errc::kTooLarge:
      return "too large";
    case Errc::kMalformed:
      return "malformed";
    case Errc::kUnsupported:
      return "unsupported";
    case Errc::kBadSignature:
      return "bad signature";
    case Errc::kCrypto:
      return "crypto failure";
    case Errc::kProtocol:
      return "protocol violation";
    case Errc::kPeerIdMismatch:
      return "peer id mismatch";
    case Errc::kNegotiationFailed:
      return "negotiation failed";
    case Errc::kState:
      return "invalid state";
    case Errc::kIo:
      return "i/o error";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kClosed:
      return "closed";
    case Errc::kResourceLimit:
      return "resource limit";
  }
  return "unknown error";
}

std::string Error::to_string() const {
  std::string s(libp2p::to_string(code));
  if (!message.empty()) {
    s += ": ";
    s += message;
  }
  return s;
}

}  // namespace kwaai::p2p::libp2p
