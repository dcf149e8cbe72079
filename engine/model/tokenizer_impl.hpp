// Internal: the tokenizer's state, shared by tokenizer.cpp (encode/decode) and
// tokenizer_load.cpp (building it from tokenizer.json).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/model/tokenizer.hpp"

namespace kwaai::engine {

inline constexpr std::size_t kTokMaxVocab = 1u << 22;   // 4M entries: far above real vocabularies
inline constexpr std::size_t kTokMaxTokenBytes = 1024;  // longest vocab/added token string
inline constexpr char32_t kSpaceMark = 0x2581;          // "\u2581"

struct Tokenizer::Impl {
  Kind kind = Kind::SentencePieceBpe;
  std::unordered_map<std::string, std::int32_t> vocab;
  std::vector<std::string> id_to_tok;  // indexed by id ("" for holes)
  // (left id, right id) -> (rank, merged id)
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges;
  struct Added {
    std::string content;
    std::int32_t id;
    bool special;
  };
  std::vector<Added> added;  // sorted longest content first: longest match wins
  std::vector<bool> special;
  std::vector<bool> is_added;  // by id
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool fuse_unk = false;  // consecutive unknowns become one <unk>
  std::int32_t unk = -1;
  std::array<std::int32_t, 256> byte_tokens{};  // <0xNN> ids, -1 when absent
  // SentencePiece normalisation: prepend "▁" to each segment / only the first / never.
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;
  bool metaspace_split = false;
  bool strip_leading_space = true;  // decoder removes the space the normalizer added
  std::int32_t bos = -1, eos = -1;

  std::int32_t find(std::string_view s) const {
    auto it = vocab.find(std::string(s));
    return it == vocab.end() ? -1 : it->second;
  }
  void bpe(std::vector<std::int32_t> sym, std::vector<std::int32_t>& out) const;
  void encode_sp(std::string_view text, bool first, std::vector<std::int32_t>& out) const;
  void encode_bl(std::string_view text, std::vector<std::int32_t>& out) const;
};

// Building blocks shared by the tokenizer.json and GGUF loaders.
namespace tokbuild {
// Registers `s` under `id` (limits on id and length; duplicate ids/strings are errors).
void add_token(Tokenizer::Impl& m, const std::string& origin, const std::string& s,
               std::int64_t id);
// Sorts added tokens longest first and fills the per-id special/added flags.
void index_added(Tokenizer::Impl& m);
void find_byte_tokens(Tokenizer::Impl& m);  // <0xNN> ids
void guess_bos_eos(Tokenizer::Impl& m);     // from added-token names
[[noreturn]] void throw_at(const std::string& origin, const std::string& what);
}  // namespace tokbuild

}  // namespace kwaai::engine
