// Fuzz target for the tokenizer. First byte selects the mode:
//   0: the rest is a tokenizer.json; if it loads, encode/decode a fixed text;
//   1: the rest is text for a built-in SentencePiece-style tokenizer (all 256 byte tokens);
//   2: the rest is text for a built-in byte-level (Llama 3 style) tokenizer.
// Modes 1 and 2 check decode(encode(text)) == text for valid UTF-8 without special-token text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "engine/model/tokenizer.hpp"
#include "engine/model/tokenizer_text.hpp"

namespace {

using kwaai::engine::Tokenizer;
namespace tok = kwaai::engine::tok;

std::string u8(char32_t c) {
  std::string s;
  tok::utf8_append(s, c);
  return s;
}

const Tokenizer& sp() {
  static Tokenizer t = [] {
    nlohmann::json vocab = nlohmann::json::object();
    int id = 0;
    for (const char* s : {"<unk>", "<s>", "</s>"}) vocab[s] = id++;
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b)
      vocab[std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">"] = id++;
    const std::string sm = u8(0x2581);
    for (std::string s :
         {sm, std::string("a"), std::string("b"), sm + "a", std::string("ab"), sm + "ab"})
      vocab[s] = id++;
    nlohmann::json j = {
        {"added_tokens", {{{"id", 1}, {"content", "<s>"}, {"special", true}}}},
        {"normalizer",
         {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", sm}}}}}},
        {"model",
         {{"type", "BPE"},
          {"byte_fallback", true},
          {"unk_token", "<unk>"},
          {"vocab", vocab},
          {"merges", {sm + " a", "a b", sm + "a b"}}}}};
    return Tokenizer::from_json(j.dump());
  }();
  return t;
}

const Tokenizer& bl() {
  static Tokenizer t = [] {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[u8(tok::byte_to_unicode()[b])] = b;
    vocab["he"] = 256;
    vocab[u8(0x120) + "h"] = 257;
    vocab["12"] = 258;
    nlohmann::json j = {
        {"added_tokens", {{{"id", 259}, {"content", "<|eot_id|>"}, {"special", true}}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", tok::kLlama3Pattern}}}},
            {{"type", "ByteLevel"}, {"use_regex", false}}}}}},
        {"model",
         {{"type", "BPE"},
          {"ignore_merges", true},
          {"vocab", vocab},
          {"merges", {"h e", u8(0x120) + " h", "1 2"}}}}};
    return Tokenizer::from_json(j.dump());
  }();
  return t;
}

void round_trip(const Tokenizer& t, const std::string& text) {
  auto ids = t.encode(text);
  for (auto id : ids) {
    if (id < 0 || id >= t.vocab_size()) std::abort();
  }
  std::string back = t.decode(ids);
  // Literal "<" may form special-token text and a literal U+2581 decodes to a space.
  const bool checkable = tok::utf8_sanitize(text) == text && text.find('<') == std::string::npos &&
                         text.find("\xE2\x96\x81") == std::string::npos;
  if (checkable && back != text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      try {
        Tokenizer t = Tokenizer::from_json(rest, "fuzz");
        auto ids = t.encode("hello world 123 \xF0\x9F\x98\x80", true);
        (void)t.decode(ids);
      } catch (const std::runtime_error&) {
      }
      break;
    case 1:
      round_trip(sp(), rest);
      break;
    default:
      round_trip(bl(), rest);
      break;
  }
  return 0;
}
