// Building a Tokenizer from GGUF metadata (tokenizer.ggml.*), so a lone .gguf file can encode
// prompts. Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
// 6 byte.
#include <algorithm>
#include <map>
#include <stdexcept>

#include "engine/model/gguf.hpp"
#include "engine/model/gguf_writer.hpp"
#include "engine/model/tokenizer_impl.hpp"
#include "engine/model/tokenizer_text.hpp"

namespace kwaai::engine {
namespace {

enum TokenType : std::int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUser = 4, kByte = 6 };

const std::vector<GgufValue>* array_of(const GgufHeader& h, const char* key, GgufType elem,
                                       const std::string& origin, bool required) {
  const GgufValue* v = h.find(key);
  if (v == nullptr) {
    if (required) tokbuild::throw_at(origin, std::string("missing '") + key + "'");
    return nullptr;
  }
  if (v->type != GgufType::ARRAY || v->elem_type != elem) {
    tokbuild::throw_at(origin,
                       std::string("'") + key + "' is not an array of " + gguf_type_name(elem));
  }
  return &v->items;
}

// SentencePiece BPE merges pieces by the score of the merged piece (highest first, ties
// leftmost). That is BPE with rank = dense rank of the merged token's score, over every split
// of a vocab token into two vocab tokens at a character boundary.
void merges_from_scores(Tokenizer::Impl& m, const std::vector<float>& scores,
                        const std::vector<std::int64_t>& types) {
  std::vector<float> distinct(scores);
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  auto rank_of = [&](float s) {
    return static_cast<std::int32_t>(
        std::lower_bound(distinct.begin(), distinct.end(), s, std::greater<float>()) -
        distinct.begin());
  };
  for (std::size_t id = 0; id < m.id_to_tok.size(); ++id) {
    if (types[id] != kNormal && types[id] != kUser) continue;
    const std::string& t = m.id_to_tok[id];
    for (std::size_t k = 1; k < t.size(); ++k) {
      if ((static_cast<unsigned char>(t[k]) & 0xC0) == 0x80) continue;  // inside a character
      const std::int32_t a = m.find(std::string_view(t).substr(0, k));
      const std::int32_t b = m.find(std::string_view(t).substr(k));
      if (a < 0 || b < 0) continue;
      const std::uint64_t key =
          (static_cast<std::uint64_t>(a) << 32) | static_cast<std::uint32_t>(b);
      m.merges.emplace(key, std::make_pair(rank_of(scores[id]), static_cast<std::int32_t>(id)));
    }
  }
}

}  // namespace

std::optional<Tokenizer> Tokenizer::from_gguf_metadata(const GgufHeader& h,
                                                       const std::string& origin) {
  const GgufValue* model = h.find("tokenizer.ggml.model");
  if (model == nullptr) return std::nullopt;
  if (model->type != GgufType::STRING)
    tokbuild::throw_at(origin, "tokenizer.ggml.model is not a string");
  const std::string kind = model->s;
  if (kind != "llama" && kind != "gpt2") {
    tokbuild::throw_at(origin, "tokenizer model '" + kind + "' is not supported (llama, gpt2)");
  }
  const auto* tokens = array_of(h, "tokenizer.ggml.tokens", GgufType::STRING, origin, true);
  const auto* types_v = array_of(h, "tokenizer.ggml.token_type", GgufType::I32, origin, false);
  if (tokens->size() > kTokMaxVocab) tokbuild::throw_at(origin, "vocabulary too large");
  if (types_v != nullptr && types_v->size() != tokens->size()) {
    tokbuild::throw_at(origin, "token_type has " + std::to_string(types_v->size()) +
                                   " entries for " + std::to_string(tokens->size()) + " tokens");
  }
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.byte_tokens.fill(-1);
  std::vector<std::int64_t> types(tokens->size(), kNormal);
  for (std::size_t id = 0; id < tokens->size(); ++id) {
    const std::string& t = (*tokens)[id].s;
    if (types_v != nullptr) types[id] = (*types_v)[id].i;
    tokbuild::add_token(m, origin, t, static_cast<std::int64_t>(id));
    // Control and unknown tokens are special (as in HF's added_tokens for Llama 2/3).
    if ((types[id] == kControl || types[id] == kUser || types[id] == kUnknown) && !t.empty()) {
      m.added.push_back({t, static_cast<std::int32_t>(id), types[id] != kUser});
    }
    if (types[id] == kUnknown) m.unk = static_cast<std::int32_t>(id);
  }
  tokbuild::index_added(m);
  tokbuild::find_byte_tokens(m);
  auto id_key = [&](const char* key) -> std::int32_t {
    const GgufValue* v = h.find(key);
    if (v == nullptr || !v->is_integer()) return -1;
    const std::int64_t id = v->as_int();
    if (id < 0 || static_cast<std::size_t>(id) >= tokens->size()) {
      tokbuild::throw_at(origin, std::string("'") + key + "' = " + std::to_string(id) +
                                     " is outside the vocabulary");
    }
    return static_cast<std::int32_t>(id);
  };
  if (std::int32_t u = id_key("tokenizer.ggml.unknown_token_id"); u >= 0) m.unk = u;
  m.bos = id_key("tokenizer.ggml.bos_token_id");
  m.eos = id_key("tokenizer.ggml.eos_token_id");

  if (kind == "llama") {
    const auto* scores_v = array_of(h, "tokenizer.ggml.scores", GgufType::F32, origin, true);
    if (scores_v->size() != tokens->size())
      tokbuild::throw_at(origin, "scores and tokens differ in length");
    std::vector<float> scores(scores_v->size());
    for (std::size_t i = 0; i < scores.size(); ++i)
      scores[i] = static_cast<float>((*scores_v)[i].f);
    m.kind = Kind::SentencePieceBpe;
    m.byte_fallback = true;
    m.prepend = Impl::Prepend::Always;
    if (const GgufValue* sp = h.find("tokenizer.ggml.add_space_prefix");
        sp && sp->type == GgufType::BOOL && !sp->as_bool()) {
      m.prepend = Impl::Prepend::Never;
    }
    m.strip_leading_space = m.prepend != Impl::Prepend::Never;
    merges_from_scores(m, scores, types);
  } else {
    const GgufValue* pre = h.find("tokenizer.ggml.pre");
    const std::string p = pre != nullptr && pre->type == GgufType::STRING ? pre->s : "";
    if (p != "llama-bpe" && p != "llama3") {
      tokbuild::throw_at(
          origin, "gpt2 tokenizer with pre-tokenizer '" + p + "' is not supported (llama-bpe)");
    }
    m.kind = Kind::ByteLevelBpe;
    m.ignore_merges = true;
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      tok::utf8_append(ch, tok::byte_to_unicode()[b]);
      if (m.find(ch) < 0)
        tokbuild::throw_at(origin, "byte-level vocabulary lacks byte " + std::to_string(b));
    }
    const auto* merges = array_of(h, "tokenizer.ggml.merges", GgufType::STRING, origin, true);
    std::int32_t rank = 0;
    for (const auto& e : *merges) {
      const std::string& s = e.s;
      const auto sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size()) {
        tokbuild::throw_at(origin, "merge #" + std::to_string(rank) + " is not 'a b'");
      }
      const std::string a = s.substr(0, sp), b = s.substr(sp + 1);
      const std::int32_t ia = m.find(a), ib = m.find(b), im = m.find(a + b);
      if (ia < 0 || ib < 0 || im < 0) {
        tokbuild::throw_at(
            origin, "merge #" + std::to_string(rank) + " uses a token missing from the vocabulary");
      }
      m.merges.emplace((static_cast<std::uint64_t>(ia) << 32) | static_cast<std::uint32_t>(ib),
                       std::make_pair(rank, im));
      ++rank;
    }
  }
  return Tokenizer(std::move(impl));
}

std::optional<Tokenizer> Tokenizer::from_gguf(const std::string& path) {
  GgufFile f(path);
  return from_gguf_metadata(f.header(), path);
}

void Tokenizer::write_gguf_metadata(GgufWriter& w) const {
  const Impl& m = *impl_;
  const std::size_t n = m.id_to_tok.size();
  std::vector<std::string> tokens(n);
  std::vector<std::int32_t> types(n, kNormal);
  for (std::size_t id = 0; id < n; ++id) {
    tokens[id] = m.id_to_tok[id];
    if (tokens[id].empty()) {
      // A hole in the ids: GGUF needs a token for every id (llama.cpp fills them the same way).
      tokens[id] = "[PAD" + std::to_string(id) + "]";
      types[id] = 5;  // unused
    }
  }
  for (const Impl::Added& a : m.added)
    types[static_cast<std::size_t>(a.id)] = a.special ? kControl : kUser;
  if (m.unk >= 0) types[static_cast<std::size_t>(m.unk)] = kUnknown;
  // Merges ordered by rank, as "left right" strings (byte-level) or as scores (SentencePiece).
  struct Merge {
    std::int32_t rank;
    std::uint64_t key;  // (left id << 32) | right id
    std::int32_t merged;
    bool operator<(const Merge& o) const { return rank < o.rank; }
  };
  std::vector<Merge> by_rank;
  by_rank.reserve(m.merges.size());
  for (const auto& [key, rank_id] : m.merges)
    by_rank.push_back({rank_id.first, key, rank_id.second});
  std::sort(by_rank.begin(), by_rank.end());
  if (m.kind == Kind::SentencePieceBpe) {
    for (int b = 0; b < 256; ++b)
      if (m.byte_tokens[static_cast<std::size_t>(b)] >= 0)
        types[static_cast<std::size_t>(m.byte_tokens[static_cast<std::size_t>(b)])] = kByte;
    // A token no merge makes (characters, bytes, specials) scores below every merged one; a
    // token several merges make keeps its best (lowest) rank. Values stay exact in float
    // (below 2^24 for any vocabulary this reader takes).
    const auto n_merges = static_cast<float>(by_rank.size());
    std::vector<float> scores(n);
    for (std::size_t id = 0; id < n; ++id) scores[id] = -(n_merges + 1.0f + static_cast<float>(id));
    for (const Merge& g : by_rank) {
      float& s = scores[static_cast<std::size_t>(g.merged)];
      s = std::max(s, -static_cast<float>(g.rank));
    }
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_strings("tokenizer.ggml.tokens", tokens);
    w.add_f32s("tokenizer.ggml.scores", scores);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_bool("tokenizer.ggml.add_space_prefix", m.prepend != Impl::Prepend::Never);
  } else {
    std::vector<std::string> merges;
    merges.reserve(by_rank.size());
    for (const Merge& g : by_rank)
      merges.push_back(m.id_to_tok[static_cast<std::size_t>(g.key >> 32)] + " " +
                       m.id_to_tok[static_cast<std::size_t>(g.key & 0xFFFFFFFFu)]);
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "llama-bpe");
    w.add_strings("tokenizer.ggml.tokens", tokens);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_strings("tokenizer.ggml.merges", merges);
  }
  if (m.unk >= 0) w.add_u32("tokenizer.ggml.unknown_token_id", static_cast<std::uint32_t>(m.unk));
  if (m.bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(m.bos));
  if (m.eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(m.eos));
  w.add_bool("tokenizer.ggml.add_bos_token", m.bos >= 0);
}

}  // namespace kwaai::engine
