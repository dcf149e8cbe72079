#include "engine/model/tokenizer_text.hpp"

#include <locale.h>
#include <clocale>
#include <cwctype>

namespace kwaai::engine::tok {

const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::vector<char32_t> utf8_decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = 0;
    char32_t cp = 0;
    if (b0 < 0x80) {
      len = 1;
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      len = 2;
      cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
      cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
      cp = b0 & 0x07;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
               (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)) {
      ok = false;
    }
    if (!ok) {
      out.push_back(0xDC00 + b0);
      i += 1;
    } else {
      out.push_back(cp);
      i += len;
    }
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) {
    out.push_back(static_cast<char>(cp - 0xDC00));
  } else if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_encode(const std::vector<char32_t>& cps, std::size_t begin, std::size_t end) {
  std::string s;
  for (std::size_t i = begin; i < end; ++i) utf8_append(s, cps[i]);
  return s;
}

std::string utf8_sanitize(std::string_view bytes) {
  std::string out;
  for (char32_t cp : utf8_decode(bytes)) {
    if (cp >= 0xDC80 && cp <= 0xDCFF) {
      out += "\xEF\xBF\xBD";
    } else {
      utf8_append(out, cp);
    }
  }
  return out;
}

namespace {

// glibc's built-in C.UTF-8 locale classifies all of Unicode; created once, never freed
// (process lifetime), and the *_l functions are thread-safe.
locale_t utf8_locale() {
  static locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (l == static_cast<locale_t>(0))
      l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(0));
    return l;
  }();
  return loc;
}

bool in(char32_t c, char32_t lo, char32_t hi) {
  return c >= lo && c <= hi;
}

}  // namespace

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  // Decimal digits of other scripts and the common No/Nl characters (glibc has no class for
  // them: it files non-ASCII digits under "alpha").
  return c == 0xB2 || c == 0xB3 || c == 0xB9 || in(c, 0xBC, 0xBE) || in(c, 0x660, 0x669) ||
         in(c, 0x6F0, 0x6F9) || in(c, 0x7C0, 0x7C9) || in(c, 0x966, 0x96F) || in(c, 0x9E6, 0x9EF) ||
         in(c, 0xA66, 0xA6F) || in(c, 0xAE6, 0xAEF) || in(c, 0xB66, 0xB6F) || in(c, 0xBE6, 0xBF2) ||
         in(c, 0xC66, 0xC6F) || in(c, 0xCE6, 0xCEF) || in(c, 0xD66, 0xD78) || in(c, 0xE50, 0xE59) ||
         in(c, 0xED0, 0xED9) || in(c, 0xF20, 0xF33) || in(c, 0x1040, 0x1049) ||
         in(c, 0x17E0, 0x17E9) || in(c, 0x1810, 0x1819) || in(c, 0x2070, 0x2070) ||
         in(c, 0x2074, 0x2079) || in(c, 0x2080, 0x2089) || in(c, 0x2150, 0x2189) ||
         in(c, 0x2460, 0x249B) || in(c, 0x24EA, 0x24FF) || in(c, 0x2776, 0x2793) || c == 0x3007 ||
         in(c, 0x3021, 0x3029) || in(c, 0x3038, 0x303A) || in(c, 0xFF10, 0xFF19) ||
         in(c, 0x1D7CE, 0x1D7FF);
}

bool is_space(char32_t c) {
  return in(c, 0x09, 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         in(c, 0x2000, 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (is_number(c) || is_space(c)) return false;
  if (c >= 0xD800 && c <= 0xDFFF) return false;  // our invalid-byte markers
  locale_t loc = utf8_locale();
  if (loc != static_cast<locale_t>(0)) return iswalpha_l(static_cast<wint_t>(c), loc) != 0;
  // Without the locale: CJK, Hangul, kana and the Latin/Greek/Cyrillic letter blocks.
  return in(c, 0xC0, 0x24F) && c != 0xD7 && c != 0xF7
             ? true
             : in(c, 0x370, 0x52F) || in(c, 0x3040, 0x30FF) || in(c, 0x4E00, 0x9FFF) ||
                   in(c, 0xAC00, 0xD7A3);
}

std::vector<std::pair<std::size_t, std::size_t>> llama3_split(const std::vector<char32_t>& c) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  const std::size_t n = c.size();
  auto lower = [](char32_t x) { return x >= 'A' && x <= 'Z' ? x + 32 : x; };
  auto nl = [](char32_t x) { return x == '\r' || x == '\n'; };
  auto other = [](char32_t x) { return !is_space(x) && !is_letter(x) && !is_number(x); };
  std::size_t i = 0;
  while (i < n) {
    std::size_t end = i;
    // 1. contractions, case-insensitive
    if (c[i] == '\'' && i + 1 < n) {
      char32_t a = lower(c[i + 1]);
      char32_t b = i + 2 < n ? lower(c[i + 2]) : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        end = i + 2;
      } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        end = i + 3;
      }
    }
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+
    if (end == i) {
      std::size_t j = i;
      if (!is_letter(c[j]) && !nl(c[j]) && !is_number(c[j]) && j + 1 < n && is_letter(c[j + 1]))
        ++j;
      if (is_letter(c[j])) {
        while (j < n && is_letter(c[j])) ++j;
        end = j;
      }
    }
    // 3. \p{N}{1,3}
    if (end == i && is_number(c[i])) {
      std::size_t j = i;
      while (j < n && j - i < 3 && is_number(c[j])) ++j;
      end = j;
    }
    // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
    if (end == i) {
      std::size_t j = i;
      if (c[j] == ' ' && j + 1 < n) ++j;
      if (other(c[j])) {
        while (j < n && other(c[j])) ++j;
        while (j < n && nl(c[j])) ++j;
        end = j;
      }
    }
    if (end == i) {
      // Only whitespace can be left here.
      std::size_t run = i;
      while (run < n && is_space(c[run])) ++run;
      // 5. \s*[\r\n]+ : up to the last newline of the whitespace run
      std::size_t last_nl = n;
      for (std::size_t j = i; j < run; ++j) {
        if (nl(c[j])) last_nl = j;
      }
      if (last_nl != n) {
        end = last_nl + 1;
      } else if (run == n || run - i == 1) {
        // 6. \s+(?!\S) at the end of text; 7. \s+ for a single space before a word
        end = run;
      } else {
        // 6. \s+(?!\S): leave the last space to prefix the next word
        end = run - 1;
      }
      if (end == i) end = i + 1;  // defensive: always make progress
    }
    out.emplace_back(i, end);
    i = end;
  }
  return out;
}

const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

int unicode_to_byte(char32_t cp) {
  static const std::array<int, 512> inv = [] {
    std::array<int, 512> t{};
    t.fill(-1);
    const auto& fwd = byte_to_unicode();
    for (int b = 0; b < 256; ++b) t[fwd[b]] = b;
    return t;
  }();
  return cp < 512 ? inv[cp] : -1;
}

}  // namespace kwaai::engine::tok
