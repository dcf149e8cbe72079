#include <openssl/sha.h>

#include <algorithm>

#include "p2p/hivemind/dht_id.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"

namespace kwaai::p2p::hivemind {

DHTID DHTID::from_key_bytes(ByteView raw_key) {
  Raw r;
  SHA1(raw_key.data(), raw_key.size(), r.data());
  return DHTID(r);
}

Result<DHTID> DHTID::from_key(const Value& key) {
  if (key.kind() == Value::Kind::bin) return from_key_bytes(key.as_bin());
  auto packed = msgpack_encode(key);
  if (!packed) return packed.error();
  return from_key_bytes(*packed);
}

Result<DHTID> DHTID::from_bytes(ByteView b) {
  std::size_t skip = 0;
  while (b.size() - skip > kBytes && b[skip] == 0) ++skip;  // leading zeros do not count
  if (b.size() - skip > kBytes)
    return make_error(Errc::malformed,
                      "DHTID of " + std::to_string(b.size()) + " bytes is not below 2^160");
  Raw r{};
  std::copy(b.begin() + skip, b.end(), r.end() - (b.size() - skip));
  return DHTID(r);
}

bool DHTID::is_zero() const {
  return std::all_of(raw_.begin(), raw_.end(), [](std::uint8_t c) { return c == 0; });
}

DHTID DHTID::operator^(const DHTID& o) const {
  Raw r;
  for (std::size_t i = 0; i < kBytes; ++i) r[i] = raw_[i] ^ o.raw_[i];
  return DHTID(r);
}

int DHTID::common_prefix_length(const DHTID& o) const {
  for (std::size_t i = 0; i < kBytes; ++i) {
    std::uint8_t x = raw_[i] ^ o.raw_[i];
    if (x) return static_cast<int>(i * 8) + __builtin_clz(x) - 24;
  }
  return kBits;
}

std::string DHTID::decimal() const {
  // Repeated division of the big-endian byte string by 10.
  Raw n = raw_;
  std::string digits;
  while (!std::all_of(n.begin(), n.end(), [](std::uint8_t c) { return c == 0; })) {
    unsigned rem = 0;
    for (auto& c : n) {
      unsigned cur = rem << 8 | c;
      c = static_cast<std::uint8_t>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rem));
  }
  if (digits.empty()) return "0";
  std::reverse(digits.begin(), digits.end());
  return digits;
}

void sort_by_distance(std::vector<DHTID>& ids, const DHTID& target) {
  std::sort(ids.begin(), ids.end(),
            [&](const DHTID& a, const DHTID& b) { return (a ^ target) < (b ^ target); });
}

}  // namespace kwaai::p2p::hivemind
