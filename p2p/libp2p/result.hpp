// Typed results for the p2p layer. Remote peers send malformed bytes as a matter of course,
// so decoders and state machines report failure as a value (Error{code, message}) instead of
// throwing; callers decide whether a failure closes a stream, a connection, or is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace kwaai::p2p::libp2p {

enum class Errc : std::uint8_t {
  kTruncated,          // need more bytes (incremental decoders use std::nullopt instead)
  kTooLarge,           // a declared length or value exceeds an explicit limit
  kMalformed,          // bytes that violate the format
  kUnsupported,        // well-formed but unsupported here (unknown multiaddr code, key type...)
  kBadSignature,       // signature verification failed
  kCrypto,             // AEAD tag mismatch, low-order DH point, key parse failure
  kProtocol,           // peer broke a protocol rule (wrong header, unexpected message...)
  kPeerIdMismatch,     // authenticated peer is not the one we dialed
  kNegotiationFailed,  // no common protocol
  kState,              // API misuse: call made in the wrong state
  kIo,                 // file or socket error (used by the host layer)
  kTimeout,            // used by the host layer
  kClosed,             // stream/connection closed or reset (used by the host layer)
  kResourceLimit,      // too many streams / buffers full (used by the host layer)
};

std::string_view to_string(Errc code);

struct Error {
  Errc code;
  std::string message;

  // "malformed: multiaddr: truncated ip4 value"
  std::string to_string() const;
};

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

// Holds either a T or an Error. Implicitly constructible from both, so functions can
// `return value;` or `return make_error(...)`.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");

 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_{Errc::kState, {}};
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace kwaai::p2p::libp2p
