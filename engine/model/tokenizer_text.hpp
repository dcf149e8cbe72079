// Internal text helpers of the tokenizer: UTF-8 <-> code points, the Unicode classes the Llama 3
// split pattern uses, that pattern as a hand-written scanner, and GPT-2's byte<->unicode map.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kwaai::engine::tok {

// Decodes UTF-8 leniently: an invalid byte becomes its own code point 0xDC00+byte (a lone
// surrogate, never produced by valid UTF-8), so every input byte survives a round trip.
std::vector<char32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, char32_t cp);  // 0xDC80..0xDCFF -> the original byte
std::string utf8_encode(const std::vector<char32_t>& cps, std::size_t begin, std::size_t end);
// Replaces every invalid UTF-8 sequence with U+FFFD (what HF decoders produce).
std::string utf8_sanitize(std::string_view bytes);

bool is_letter(char32_t c);  // \p{L}
bool is_number(char32_t c);  // \p{N}
bool is_space(char32_t c);   // \s (Unicode White_Space)

// Splits text per the Llama 3 pre-tokenizer pattern
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// returning [begin, end) code-point ranges that tile the input.
std::vector<std::pair<std::size_t, std::size_t>> llama3_split(const std::vector<char32_t>& cps);

// The exact pattern string Llama 3's tokenizer.json carries (for recognising it).
extern const char* const kLlama3Pattern;

// GPT-2 byte-level alphabet: byte -> code point and back (-1 for code points not in the map).
const std::array<char32_t, 256>& byte_to_unicode();
int unicode_to_byte(char32_t cp);

}  // namespace kwaai::engine::tok
