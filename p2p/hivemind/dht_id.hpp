// hivemind DHTID (hivemind/dht/routing.py): a 160-bit unsigned integer, SHA-1 of the key, sent as
// 20 big-endian bytes. Distance is XOR; ids compare as integers (big-endian byte order).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>

#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/msgpack_value.hpp"

namespace kwaai::p2p::hivemind {

class DHTID {
 public:
  static constexpr std::size_t kBytes = 20;
  static constexpr int kBits = 160;
  using Raw = std::array<std::uint8_t, kBytes>;

  constexpr DHTID() : raw_{} {}
  explicit constexpr DHTID(const Raw& raw) : raw_(raw) {}

  // DHTID.generate(source=key): bytes keys are hashed raw, anything else msgpack-encoded first.
  static DHTID from_key_bytes(ByteView raw_key);  // key is a Python bytes object
  static Result<DHTID> from_key(const Value& key);
  static DHTID from_key_str(std::string_view key) {
    return *from_key(Value::str(std::string(key)));
  }
  // DHTID.from_bytes: big-endian integer of any length, which must be < 2^160. Shorter inputs
  // are left-padded (an empty NodeInfo.node_id is id 0, exactly as hivemind reads it).
  static Result<DHTID> from_bytes(ByteView b);
  // A uniformly random id from the caller's random bytes (the core has no RNG of its own, so
  // that tests stay reproducible; the node passes OS randomness).
  static DHTID from_random(const Raw& random_bytes) { return DHTID(random_bytes); }

  const Raw& raw() const { return raw_; }
  Bytes to_bytes() const { return Bytes(raw_.begin(), raw_.end()); }
  std::string hex() const { return to_hex(raw_); }
  bool is_zero() const;

  DHTID operator^(const DHTID& o) const;
  // Bit i counted from the most significant bit (i = 0 is the top bit).
  bool bit(int i) const { return (raw_[i / 8] >> (7 - i % 8)) & 1; }
  // Number of leading bits shared with `o` (160 when equal).
  int common_prefix_length(const DHTID& o) const;
  friend auto operator<=>(const DHTID&, const DHTID&) = default;

  // Decimal representation of the integer (to compare with hivemind's int(DHTID)).
  std::string decimal() const;

 private:
  Raw raw_;
};

// Sorts `ids` in place by XOR distance to `target`, nearest first (ties cannot happen between
// distinct ids).
void sort_by_distance(std::vector<DHTID>& ids, const DHTID& target);

}  // namespace kwaai::p2p::hivemind

template <>
struct std::hash<kwaai::p2p::hivemind::DHTID> {
  std::size_t operator()(const kwaai::p2p::hivemind::DHTID& id) const noexcept {
    std::size_t h = 0;
    for (int i = 0; i < 8; ++i) h = h << 8 | id.raw()[i];
    return h;
  }
};
