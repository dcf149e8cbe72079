#include "p2p/libp2p/multibase.hpp"

#include <algorithm>
#include <array>

namespace kwaai::p2p::libp2p {
namespace {

constexpr std::string_view kBase58Alphabet =
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr std::string_view kBase32Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

template <std::size_t N>
constexpr std::array<std::int8_t, 256> reverse_table(std::string_view alphabet) {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    t[static_cast<std::uint8_t>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}

constexpr auto kBase58Rev = reverse_table<58>(kBase58Alphabet);
constexpr auto kBase32Rev = reverse_table<32>(kBase32Alphabet);

}  // namespace

std::string base58btc_encode(ByteView data) {
  std::size_t zeros = 0;
  while (zeros < data.size() && data[zeros] == 0) ++zeros;
  // Big-number base conversion, digits little-endian in `digits`.
  std::vector<std::uint8_t> digits;
  digits.reserve(data.size() * 138 / 100 + 1);
  for (std::size_t i = zeros; i < data.size(); ++i) {
    std::uint32_t carry = data[i];
    for (auto& d : digits) {
      carry += std::uint32_t{d} << 8;
      d = static_cast<std::uint8_t>(carry % 58);
      carry /= 58;
    }
    while (carry > 0) {
      digits.push_back(static_cast<std::uint8_t>(carry % 58));
      carry /= 58;
    }
  }
  std::string out(zeros, '1');
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(kBase58Alphabet[*it]);
  return out;
}

Result<Bytes> base58btc_decode(std::string_view text) {
  if (text.size() > kMaxBase58Input)
    return make_error(Errc::kTooLarge,
                      "base58 input longer than " + std::to_string(kMaxBase58Input));
  std::size_t ones = 0;
  while (ones < text.size() && text[ones] == '1') ++ones;
  Bytes bytes;  // little-endian base-256 digits
  for (std::size_t i = ones; i < text.size(); ++i) {
    const int v = kBase58Rev[static_cast<std::uint8_t>(text[i])];
    if (v < 0) return make_error(Errc::kMalformed, "invalid base58 character");
    std::uint32_t carry = static_cast<std::uint32_t>(v);
    for (auto& b : bytes) {
      carry += std::uint32_t{b} * 58;
      b = static_cast<std::uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push_back(static_cast<std::uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  Bytes out(ones, 0);
  out.insert(out.end(), bytes.rbegin(), bytes.rend());
  return out;
}

std::string base32_lower_encode(ByteView data) {
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::uint8_t b : data) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kBase32Alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
    buffer &= (1u << bits) - 1;
  }
  if (bits > 0) out.push_back(kBase32Alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

Result<Bytes> base32_lower_decode(std::string_view text) {
  // Lengths 1, 3 and 6 mod 8 cannot come from whole bytes.
  const std::size_t rem = text.size() % 8;
  if (rem == 1 || rem == 3 || rem == 6)
    return make_error(Errc::kMalformed, "invalid base32 length");
  Bytes out;
  out.reserve(text.size() * 5 / 8);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = kBase32Rev[static_cast<std::uint8_t>(c)];
    if (v < 0) return make_error(Errc::kMalformed, "invalid base32 character");
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
      buffer &= (1u << bits) - 1;
    }
  }
  if (buffer != 0) return make_error(Errc::kMalformed, "non-zero trailing base32 bits");
  return out;
}

}  // namespace kwaai::p2p::libp2p
