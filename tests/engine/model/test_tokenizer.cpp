// Tokenizer tests on two hand-made tokenizer.json files (tests/engine/model/data). Every expected
// id sequence below was worked out by hand from those files; the derivations are in comments.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/model/gguf.hpp"
#include "engine/model/tokenizer.hpp"
#include "engine/model/tokenizer_text.hpp"
#include "tests/engine/model/gguf_writer.hpp"
#include "tests/engine/model/test_util.hpp"

namespace kwaai::engine {
namespace {

using Ids = std::vector<std::int32_t>;

const Tokenizer& sp() {
  static Tokenizer t = Tokenizer::from_file(test::data_dir() + "/sp_tokenizer.json");
  return t;
}
const Tokenizer& bl() {
  static Tokenizer t = Tokenizer::from_file(test::data_dir() + "/bl_tokenizer.json");
  return t;
}

// ---- SentencePiece-style (Llama 2) ----
// vocab: 0 <unk> 1 <s> 2 </s> 3 <0x0A> 4 <0xF0> 5 <0x9F> 6 <0x98> 7 <0x80> 8 ▁ 9 h 10 e 11 l
// 12 o 13 w 14 r 15 d 16 ▁h 17 el 18 ll 19 lo 20 ▁hel 21 ▁hello 22 ▁w 23 or 24 ▁wor 25 ▁worl
// 26 ▁world; merges by rank: e l, ▁ h, l o, l l, ▁h el, ▁hel lo, ▁ w, o r, ▁w or, ▁wor l, ▁worl d.

TEST(TokenizerSentencePiece, DetectsFlavourAndSpecialIds) {
  EXPECT_EQ(sp().kind(), Tokenizer::Kind::SentencePieceBpe);
  EXPECT_EQ(sp().vocab_size(), 27);
  EXPECT_EQ(sp().bos_id(), 1);
  EXPECT_EQ(sp().eos_id(), 2);
  EXPECT_EQ(sp().token_to_id("\u2581hello"), 21);
  EXPECT_FALSE(sp().token_to_id("zzz").has_value());
  EXPECT_TRUE(sp().is_special(1));
  EXPECT_FALSE(sp().is_special(21));
  EXPECT_THROW(sp().id_to_token(27), std::out_of_range);
}

TEST(TokenizerSentencePiece, MergesApplyByRankNotLeftToRight) {
  // ▁ h e l l o: "e l"(0) first takes the first l, so "l l"(3) never applies; then ▁h(1), lo(2),
  // ▁hel(4), ▁hello(5).
  EXPECT_EQ(sp().encode("hello"), (Ids{21}));
  // ▁ h e l l: el, ▁h, ▁hel; the last l stays alone ("l l" would need the l that el took).
  EXPECT_EQ(sp().encode("hell"), (Ids{20, 11}));
  // ▁hello ▁world (▁w, or, ▁wor, ▁worl, ▁world).
  EXPECT_EQ(sp().encode("hello world"), (Ids{21, 26}));
  // A lone "ll" with no e before it does merge.
  EXPECT_EQ(sp().encode("ll"), (Ids{8, 18}));
}

TEST(TokenizerSentencePiece, LeadingSpacesAndBos) {
  // " hello" -> "▁▁hello": ▁ then ▁hello.
  EXPECT_EQ(sp().encode(" hello"), (Ids{8, 21}));
  EXPECT_EQ(sp().encode("hello", /*add_bos=*/true), (Ids{1, 21}));
  EXPECT_EQ(sp().encode(""), Ids{});
}

TEST(TokenizerSentencePiece, ByteFallbackForEmojiAndNewline) {
  // 😀 = F0 9F 98 80, not in the vocab: its four byte tokens.
  EXPECT_EQ(sp().encode("h\xF0\x9F\x98\x80"), (Ids{16, 4, 5, 6, 7}));
  EXPECT_EQ(sp().encode("h\nh"), (Ids{16, 3, 9}));
  // é (C3 A9): no byte tokens for it either -> <unk>; consecutive unknowns fuse.
  EXPECT_EQ(sp().encode("\xC3\xA9"), (Ids{8, 0}));
  EXPECT_EQ(sp().encode("\xC3\xA9\xC3\xA9h"), (Ids{8, 0, 9}));
}

TEST(TokenizerSentencePiece, SpecialTokensMatchedBeforeBpe) {
  // Each text segment gets its own prepended ▁ (HF normalizes per split).
  EXPECT_EQ(sp().encode("<s>hello</s>"), (Ids{1, 21, 2}));
  EXPECT_EQ(sp().encode("hello<s>hello"), (Ids{21, 1, 21}));
}

TEST(TokenizerSentencePiece, DecodeReassemblesBytesAndSpaces) {
  EXPECT_EQ(sp().decode(Ids{21, 26}), "hello world");
  EXPECT_EQ(sp().decode(Ids{8, 21}), " hello");
  EXPECT_EQ(sp().decode(Ids{16, 4, 5, 6, 7}), "h\xF0\x9F\x98\x80");
  EXPECT_EQ(sp().decode(Ids{16, 3, 9}), "h\nh");
  EXPECT_EQ(sp().decode(Ids{1, 21, 2}, /*skip_special=*/true), "hello");
  // As HF: the prepended space is stripped only at the very start of the text.
  EXPECT_EQ(sp().decode(Ids{1, 21, 2}), "<s> hello</s>");
  // An incomplete byte sequence decodes to U+FFFD rather than invalid UTF-8.
  EXPECT_EQ(sp().decode(Ids{4, 5}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_THROW(sp().decode(Ids{99}), std::out_of_range);
  for (const char* s : {"hello world", " hello", "h\nh", "hell o\xF0\x9F\x98\x80"}) {
    EXPECT_EQ(sp().decode(sp().encode(s)), s);
  }
}

TEST(TokenizerSentencePiece, MetaspacePrependFirstSplitsWords) {
  auto j = nlohmann::json::parse(test::read_file(test::data_dir() + "/sp_tokenizer.json"));
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"},
                        {"replacement", "\u2581"},
                        {"prepend_scheme", "first"},
                        {"split", true}};
  Tokenizer t = Tokenizer::from_json(j.dump());
  // Only the first segment gets ▁: "hello" after <s> is at the start -> ▁hello; the second
  // segment "hello" is not first -> h e l l o -> h el lo.
  EXPECT_EQ(t.encode("hello</s>hello"), (Ids{21, 2, 9, 17, 19}));
  // Words split at ▁: "hello world" -> [▁hello][▁world].
  EXPECT_EQ(t.encode("hello world"), (Ids{21, 26}));
}

// ---- Byte-level (Llama 3) ----
// ids 0..255: the GPT-2 character of byte b has id b (so ' '->Ġ is 32, '\n'->Ċ is 10).
// 256 he 257 ll 258 hell 259 hello 260 Ġw 261 or 262 Ġwor 263 ld 264 Ġworld 265 12 266 123
// 267 ĠĠ 268 <|begin_of_text|> 269 <|end_of_text|> 270 <|eot_id|> 271 lol (no merge path);
// merges by rank: h e, l l, he ll, hell o, Ġ w, o r, Ġw or, l d, Ġwor ld, 1 2, 12 3, Ġ Ġ.

TEST(TokenizerByteLevel, DetectsFlavourAndSpecialIds) {
  EXPECT_EQ(bl().kind(), Tokenizer::Kind::ByteLevelBpe);
  EXPECT_EQ(bl().vocab_size(), 272);
  EXPECT_EQ(bl().bos_id(), 268);
  EXPECT_EQ(bl().eos_id(), 269);
}

TEST(TokenizerByteLevel, WordsAndMergeOrder) {
  EXPECT_EQ(bl().encode("hello world"), (Ids{259, 264}));        // [hello][ world]
  EXPECT_EQ(bl().encode("he's"), (Ids{256, 39, 115}));           // [he]['s]
  EXPECT_EQ(bl().encode("I'LL"), (Ids{73, 39, 76, 76}));         // contraction is case-insensitive
  EXPECT_EQ(bl().encode("hi ?!"), (Ids{104, 105, 32, 63, 33}));  // [hi][ ?!]
}

TEST(TokenizerByteLevel, DigitsSplitInThrees) {
  EXPECT_EQ(bl().encode("12345"), (Ids{266, 52, 53}));            // [123][45]
  EXPECT_EQ(bl().encode("1234567"), (Ids{266, 52, 53, 54, 55}));  // [123][456][7]
  EXPECT_EQ(bl().encode("a12"), (Ids{97, 265}));                  // [a][12]
}

TEST(TokenizerByteLevel, SpacesAndNewlines) {
  // "  hello": \s+(?!\S) leaves the last space to the word: [ ][ hello] -> Ġ, then Ġ h e l l o
  // where "Ġ h" has no merge: Ġ, hello.
  EXPECT_EQ(bl().encode("  hello"), (Ids{32, 32, 259}));
  // "hi  \n\nyo": [hi][  \n\n][yo]; ĠĠ merges, Ċ Ċ stay.
  EXPECT_EQ(bl().encode("hi  \n\nyo"), (Ids{104, 105, 267, 10, 10, 121, 111}));
  // Trailing spaces at the end of text stay together: [hello][  ].
  EXPECT_EQ(bl().encode("hello  "), (Ids{259, 267}));
}

TEST(TokenizerByteLevel, NonAsciiLettersAndEmojiAsBytes) {
  // é is a letter: [héllo] = h, C3 (Ã=195), A9 (©=169), ll, o.
  EXPECT_EQ(bl().encode("h\xC3\xA9llo"), (Ids{104, 195, 169, 257, 111}));
  // 😀 is neither letter nor number: [hi][😀] -> its four bytes.
  EXPECT_EQ(bl().encode("hi\xF0\x9F\x98\x80"), (Ids{104, 105, 240, 159, 152, 128}));
}

TEST(TokenizerByteLevel, SpecialTokensAndIgnoreMerges) {
  EXPECT_EQ(bl().encode("<|begin_of_text|>hello<|eot_id|>"), (Ids{268, 259, 270}));
  EXPECT_EQ(bl().encode("hello", /*add_bos=*/true), (Ids{268, 259}));
  // ignore_merges: a whole piece in the vocab is taken as is even without a merge path.
  EXPECT_EQ(bl().encode("lol"), (Ids{271}));
}

TEST(TokenizerByteLevel, DecodeRoundTrips) {
  for (const char* s : {"hello world", "  hello", "hi  \n\nyo", "h\xC3\xA9llo",
                        "hi\xF0\x9F\x98\x80", "1234567 he's", "tab\there\r\n"}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(bl().decode(bl().encode(s)), s);
  }
  EXPECT_EQ(bl().decode(Ids{268, 259, 270}, /*skip_special=*/true), "hello");
  EXPECT_EQ(bl().decode(Ids{268, 259}), "<|begin_of_text|>hello");
}

TEST(Llama3Split, PiecesFollowThePattern) {
  auto split = [](const std::string& s) {
    auto cps = tok::utf8_decode(s);
    std::vector<std::string> out;
    for (auto [b, e] : tok::llama3_split(cps)) out.push_back(tok::utf8_encode(cps, b, e));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("Hello, world!"), (V{"Hello", ",", " world", "!"}));
  EXPECT_EQ(split("we're 2024"), (V{"we", "'re", " ", "202", "4"}));
  EXPECT_EQ(split("a\n\n b"), (V{"a", "\n\n", " b"}));
  EXPECT_EQ(split("x   y"), (V{"x", "  ", " y"}));
  // The optional non-letter prefix takes the bracket: [(hi][)\n].
  EXPECT_EQ(split("(hi)\n"), (V{"(hi", ")\n"}));
  EXPECT_EQ(split("\xD0\x9F\xD1\x80\xD0\xB8 \xE4\xBD\xA0\xE5\xA5\xBD"),
            (V{"\xD0\x9F\xD1\x80\xD0\xB8", " \xE4\xBD\xA0\xE5\xA5\xBD"}));
  EXPECT_EQ(split(" "), (V{" "}));
}

// Vectors from the Python `regex` module running the real pattern (data/llama3_split_vectors.json).
TEST(Llama3Split, MatchesRegexModuleVectors) {
  auto j = nlohmann::json::parse(test::read_file(test::data_dir() + "/llama3_split_vectors.json"));
  ASSERT_GE(j["cases"].size(), 300u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(text);
    auto cps = tok::utf8_decode(text);
    std::vector<std::string> got;
    for (auto [b, e] : tok::llama3_split(cps)) got.push_back(tok::utf8_encode(cps, b, e));
    EXPECT_EQ(got, c["pieces"].get<std::vector<std::string>>());
  }
}

// ---- GGUF-embedded vocabularies (tokenizer.ggml.*) built from the same two files ----

std::vector<std::string> tokens_by_id(const nlohmann::json& vocab) {
  std::vector<std::string> t(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    t.at(it.value().get<std::size_t>()) = it.key();
  return t;
}

std::string i32_array(const std::vector<std::int32_t>& v) {
  std::string b = test::GgufWriter::raw<std::uint32_t>(test::GgufWriter::I32) +
                  test::GgufWriter::raw<std::uint64_t>(v.size());
  for (auto x : v) b += test::GgufWriter::raw(x);
  return b;
}

std::string f32_array(const std::vector<float>& v) {
  std::string b = test::GgufWriter::raw<std::uint32_t>(test::GgufWriter::F32) +
                  test::GgufWriter::raw<std::uint64_t>(v.size());
  for (auto x : v) b += test::GgufWriter::raw(x);
  return b;
}

// llama.cpp's "llama" vocabulary has scores instead of merges: give merge rank r's result the
// score -r (and single characters a low score), so score-ordered merging must reproduce the
// tokenizer.json encodings.
TEST(TokenizerGguf, SentencePieceScoresReproduceMergeOrder) {
  auto j = nlohmann::json::parse(test::read_file(test::data_dir() + "/sp_tokenizer.json"));
  auto toks = tokens_by_id(j["model"]["vocab"]);
  std::vector<float> scores(toks.size(), -1000.0f);
  std::vector<std::int32_t> types(toks.size(), 1);
  types[0] = 2;
  types[1] = types[2] = 3;
  for (int i = 3; i <= 7; ++i) types[i] = 6;
  int rank = 0;
  for (const auto& m : j["model"]["merges"]) {
    std::string s = m.get<std::string>();
    std::string merged = s.substr(0, s.find(' ')) + s.substr(s.find(' ') + 1);
    scores[j["model"]["vocab"][merged].get<std::size_t>()] = -static_cast<float>(rank++);
  }
  test::GgufWriter w;
  w.kv_str("tokenizer.ggml.model", "llama");
  w.kv_str_array("tokenizer.ggml.tokens", toks);
  w.kv_raw("tokenizer.ggml.scores", test::GgufWriter::ARRAY, f32_array(scores));
  w.kv_raw("tokenizer.ggml.token_type", test::GgufWriter::ARRAY, i32_array(types));
  w.kv_u32("tokenizer.ggml.bos_token_id", 1);
  w.kv_u32("tokenizer.ggml.eos_token_id", 2);
  w.kv_u32("tokenizer.ggml.unknown_token_id", 0);
  test::TempDir dir;
  test::write_file(dir.file("sp.gguf"), w.finish());
  auto t = Tokenizer::from_gguf(dir.file("sp.gguf"));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->kind(), Tokenizer::Kind::SentencePieceBpe);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  for (const char* s : {"hello", "hell", "hello world", "ll", " hello", "h\xF0\x9F\x98\x80", "h\nh",
                        "<s>hello</s>", "\xC3\xA9"}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(t->encode(s), sp().encode(s));
    EXPECT_EQ(t->decode(t->encode(s), true), sp().decode(sp().encode(s), true));
  }
}

TEST(TokenizerGguf, Gpt2LlamaBpeReproducesByteLevelEncodings) {
  auto j = nlohmann::json::parse(test::read_file(test::data_dir() + "/bl_tokenizer.json"));
  auto toks = tokens_by_id(j["model"]["vocab"]);
  std::vector<std::int32_t> types(toks.size(), 1);
  types[268] = types[269] = types[270] = 3;
  std::vector<std::string> merges;
  for (const auto& m : j["model"]["merges"])
    merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  test::GgufWriter w;
  w.kv_str("tokenizer.ggml.model", "gpt2");
  w.kv_str("tokenizer.ggml.pre", "llama-bpe");
  w.kv_str_array("tokenizer.ggml.tokens", toks);
  w.kv_raw("tokenizer.ggml.token_type", test::GgufWriter::ARRAY, i32_array(types));
  w.kv_str_array("tokenizer.ggml.merges", merges);
  w.kv_u32("tokenizer.ggml.bos_token_id", 268);
  w.kv_u32("tokenizer.ggml.eos_token_id", 269);
  const std::string bytes = w.finish();
  auto h = parse_gguf({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "bl.gguf");
  auto t = Tokenizer::from_gguf_metadata(h, "bl.gguf");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->kind(), Tokenizer::Kind::ByteLevelBpe);
  EXPECT_EQ(t->bos_id(), 268);
  for (const char* s :
       {"hello world", "he's", "I'LL", "12345", "  hello", "hi  \n\nyo", "h\xC3\xA9llo",
        "hi\xF0\x9F\x98\x80", "<|begin_of_text|>hello<|eot_id|>", "lol"}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(t->encode(s), bl().encode(s));
  }
  // Other pre-tokenizers and tokenizer models are refused; no tokenizer metadata -> nullopt.
  test::GgufWriter other;
  other.kv_str("tokenizer.ggml.model", "gpt2");
  other.kv_str("tokenizer.ggml.pre", "qwen2");
  other.kv_str_array("tokenizer.ggml.tokens", toks);
  const std::string ob = other.finish();
  auto oh = parse_gguf({reinterpret_cast<const std::byte*>(ob.data()), ob.size()}, "o.gguf");
  EXPECT_THROW(Tokenizer::from_gguf_metadata(oh, "o.gguf"), std::runtime_error);
  GgufHeader empty;
  EXPECT_FALSE(Tokenizer::from_gguf_metadata(empty, "e.gguf").has_value());
}

TEST(Tokenizer, MalformedFilesGiveClearErrors) {
  auto expect_err = [](const std::string& json, const char* fragment) {
    try {
      Tokenizer::from_json(json, "t.json");
      ADD_FAILURE() << json;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_err("{", "not valid JSON");
  expect_err("{}", "missing 'model'");
  expect_err(R"({"model":{"type":"Unigram","vocab":[]}})", "Unigram");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}})", "outside");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}})",
             "missing from the vocabulary");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["ab"]}})", "is not 'a b'");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":0,"b":0}}})", "two tokens");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":0}},"added_tokens":[{"id":1,"content":"a"}]})",
             "two ids");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":"x"}}})", "not an integer");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":0}},"pre_tokenizer":{"type":"ByteLevel"}})",
             "GPT-2");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":0}},"pre_tokenizer":{"type":"Whitespace"}})",
             "Whitespace");
  expect_err(R"({"model":{"type":"BPE","vocab":{"a":0}},"added_tokens":[{"id":"x"}]})",
             "added_tokens");
  EXPECT_THROW(Tokenizer::from_file("/nonexistent/tokenizer.json"), std::runtime_error);
  EXPECT_FALSE(Tokenizer::from_model_dir("/nonexistent").has_value());
}

}  // namespace
}  // namespace kwaai::engine
