// Typed results for the hivemind core: parsing remote bytes fails routinely, so failures are
// values (an error code plus a human-readable context string), never exceptions or aborts.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace kwaai::p2p::hivemind {

enum class Errc {
  truncated,    // input ended before a complete item
  malformed,    // bytes do not form a valid item
  too_large,    // a declared or actual size exceeds a configured limit
  unsupported,  // valid but not something this implementation (or hivemind) accepts
  rejected,     // semantically refused (e.g. storage policy)
};

const char* errc_name(Errc e);

struct Error {
  Errc code;
  std::string message;
  std::string what() const { return std::string(errc_name(code)) + ": " + message; }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace kwaai::p2p::hivemind
