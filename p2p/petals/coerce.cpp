#include "p2p/petals/coerce.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace kwaai::p2p::petals {
namespace {

bool valid_utf8(const Bytes& b) {
  std::size_t i = 0;
  while (i < b.size()) {
    const std::uint8_t c = b[i];
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= b.size() || (b[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid UTF-8 for Python too.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += n + 1;
  }
  return true;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string python_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  // Shortest round-trip digits in scientific form, e.g. "1.818e+02".
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  const auto epos = sci.find('e');
  std::string digits = sci.substr(0, epos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::atoi(sci.c_str() + epos + 1);
  std::string out;
  if (exp >= -4 && exp < 16) {  // Python's repr switches to exponent outside [-4, 16)
    if (exp >= 0) {
      if (static_cast<int>(digits.size()) <= exp + 1) {
        out = digits + std::string(exp + 1 - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
      }
    } else {
      out = "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += e;
  }
  return neg ? "-" + out : out;
}

std::optional<std::string> coerce_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::str:
      return v.as_str();
    case Value::Kind::int64:
      return std::to_string(v.as_int());
    case Value::Kind::uint64:
      return std::to_string(v.as_uint());
    case Value::Kind::boolean:
      return std::string(v.as_bool() ? "True" : "False");
    case Value::Kind::float64:
      return python_float_repr(v.as_float());
    case Value::Kind::bin:
      if (!valid_utf8(v.as_bin())) return std::nullopt;
      return std::string(v.as_bin().begin(), v.as_bin().end());
    default:
      return std::nullopt;
  }
}

std::optional<bool> coerce_bool(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::boolean:
      return v.as_bool();
    case Value::Kind::int64:
      if (v.as_int() == 0 || v.as_int() == 1) return v.as_int() == 1;
      return std::nullopt;
    case Value::Kind::float64:
      if (v.as_float() == 0.0 || v.as_float() == 1.0) return v.as_float() == 1.0;
      return std::nullopt;
    case Value::Kind::str:
    case Value::Kind::bin: {
      auto s = coerce_str(v);
      if (!s) return std::nullopt;
      const std::string l = lower(*s);
      if (l == "1" || l == "on" || l == "t" || l == "true" || l == "y" || l == "yes") return true;
      if (l == "0" || l == "off" || l == "f" || l == "false" || l == "n" || l == "no") return false;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace kwaai::p2p::petals
