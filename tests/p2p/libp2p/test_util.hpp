// Helpers shared by the libp2p core tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p::test {

inline Bytes hex(std::string_view s) {
  auto b = from_hex(s);
  EXPECT_TRUE(b.has_value()) << "bad hex in test: " << s;
  return b.value_or(Bytes{});
}

// A fresh seed per call, reported through SCOPED_TRACE by the caller.
inline std::uint64_t fresh_seed() {
  return std::random_device{}() * 0x9e3779b97f4a7c15ull ^ std::random_device{}();
}

inline Bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

template <class T>
std::string err(const Result<T>& r) {
  return r.ok() ? std::string("ok") : r.error().to_string();
}

}  // namespace kwaai::p2p::libp2p::test
