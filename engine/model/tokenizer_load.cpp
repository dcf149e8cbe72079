// Building a Tokenizer from tokenizer.json: vocabulary, merges, added tokens, and which of the
// two Llama flavours the normalizer / pre-tokenizer describe.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "engine/model/tokenizer_impl.hpp"
#include "engine/model/tokenizer_text.hpp"

namespace kwaai::engine {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw std::runtime_error("tokenizer '" + origin + "': " + what);
}

// Visits a component and, for "Sequence", its children (key differs per component kind).
template <typename F>
void visit(const json& j, F&& f) {
  if (!j.is_object()) return;
  f(j);
  for (const char* key : {"pretokenizers", "normalizers", "decoders"}) {
    if (auto it = j.find(key); it != j.end() && it->is_array()) {
      for (const auto& c : *it) visit(c, f);
    }
  }
}

std::string type_of(const json& j) {
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Tokenizer::Impl build(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin, "top level is not an object");
  auto mit = j.find("model");
  if (mit == j.end() || !mit->is_object()) fail(origin, "missing 'model' object");
  const json& model = *mit;
  if (type_of(model) != "BPE" && !(type_of(model).empty() && model.contains("merges"))) {
    fail(origin, "model type '" + type_of(model) + "' is not supported (BPE)");
  }
  Tokenizer::Impl m;
  m.byte_tokens.fill(-1);
  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object()) fail(origin, "model.vocab is not an object");
  if (vit->size() > kTokMaxVocab)
    fail(origin, "vocabulary of " + std::to_string(vit->size()) + " entries is too large");
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    if (!it.value().is_number_integer())
      fail(origin, "vocab['" + it.key().substr(0, 64) + "'] is not an integer");
    tokbuild::add_token(m, origin, it.key(), it.value().get<std::int64_t>());
  }
  if (auto ait = j.find("added_tokens"); ait != j.end() && !ait->is_null()) {
    if (!ait->is_array()) fail(origin, "added_tokens is not an array");
    for (const auto& a : *ait) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
          !a.contains("content") || !a["content"].is_string()) {
        fail(origin, "added_tokens entries need an integer 'id' and a string 'content'");
      }
      const std::string content = a["content"].get<std::string>();
      const std::int64_t id = a["id"].get<std::int64_t>();
      tokbuild::add_token(m, origin, content, id);
      const bool special = a.value("special", false);
      m.added.push_back({content, static_cast<std::int32_t>(id), special});
    }
  }
  tokbuild::index_added(m);

  m.byte_fallback = model.value("byte_fallback", false);
  m.ignore_merges = model.value("ignore_merges", false);
  m.fuse_unk = model.value("fuse_unk", false);
  if (auto u = model.find("unk_token"); u != model.end() && u->is_string()) {
    m.unk = m.find(u->get<std::string>());
  }
  tokbuild::find_byte_tokens(m);

  auto mg = model.find("merges");
  if (mg != model.end() && !mg->is_null()) {
    if (!mg->is_array()) fail(origin, "model.merges is not an array");
    std::int32_t rank = 0;
    for (const auto& e : *mg) {
      std::string a, b;
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        auto sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == s.size()) {
          fail(origin,
               "merge #" + std::to_string(rank) + " '" + s.substr(0, 64) + "' is not 'a b'");
        }
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get<std::string>();
        b = e[1].get<std::string>();
      } else {
        fail(origin, "merge #" + std::to_string(rank) + " is neither 'a b' nor [a, b]");
      }
      const std::int32_t ia = m.find(a), ib = m.find(b), im = m.find(a + b);
      if (ia < 0 || ib < 0 || im < 0) {
        fail(origin, "merge #" + std::to_string(rank) + " ('" + a.substr(0, 32) + "', '" +
                         b.substr(0, 32) + "') uses a token missing from the vocabulary");
      }
      const std::uint64_t key =
          (static_cast<std::uint64_t>(ia) << 32) | static_cast<std::uint32_t>(ib);
      m.merges.emplace(key, std::make_pair(rank, im));  // first (best) rank wins on repeats
      ++rank;
    }
  }

  // Flavour: a ByteLevel pre-tokenizer means Llama 3 style; otherwise SentencePiece style.
  bool byte_level = false;
  std::string split_pattern;
  bool bl_regex = false;
  bool metaspace = false;
  std::string prepend_scheme = "always";
  if (auto p = j.find("pre_tokenizer"); p != j.end()) {
    visit(*p, [&](const json& c) {
      const std::string t = type_of(c);
      if (t == "ByteLevel") {
        byte_level = true;
        bl_regex = c.value("use_regex", true);
      } else if (t == "Split") {
        if (auto pat = c.find("pattern"); pat != c.end() && pat->is_object()) {
          if (pat->contains("Regex") && (*pat)["Regex"].is_string())
            split_pattern = (*pat)["Regex"].get<std::string>();
          if (pat->contains("String") && (*pat)["String"].is_string())
            split_pattern = (*pat)["String"].get<std::string>();
        }
      } else if (t == "Metaspace") {
        metaspace = true;
        m.metaspace_split = c.value("split", true);
        if (c.contains("prepend_scheme") && c["prepend_scheme"].is_string()) {
          prepend_scheme = c["prepend_scheme"].get<std::string>();
        } else if (c.contains("add_prefix_space") && c["add_prefix_space"].is_boolean()) {
          prepend_scheme = c["add_prefix_space"].get<bool>() ? "always" : "never";
        }
      } else if (!t.empty() && t != "Sequence") {
        fail(origin, "pre_tokenizer '" + t + "' is not supported");
      }
    });
  }
  if (byte_level) {
    m.kind = Tokenizer::Kind::ByteLevelBpe;
    if (split_pattern.empty() && bl_regex) {
      fail(origin,
           "ByteLevel pre-tokenizer with the GPT-2 split pattern is not supported "
           "(only the Llama 3 pattern)");
    }
    if (!split_pattern.empty() && split_pattern != tok::kLlama3Pattern) {
      fail(origin, "split pattern '" + split_pattern.substr(0, 80) +
                       "' is not supported (only the Llama 3 pattern)");
    }
    if (split_pattern.empty()) fail(origin, "ByteLevel tokenizer without a split pattern");
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      tok::utf8_append(ch, tok::byte_to_unicode()[b]);
      if (m.find(ch) < 0) {
        fail(origin, "byte-level vocabulary lacks the token for byte " + std::to_string(b));
      }
    }
  } else {
    m.kind = Tokenizer::Kind::SentencePieceBpe;
    if (metaspace) {
      if (prepend_scheme == "always")
        m.prepend = Tokenizer::Impl::Prepend::Always;
      else if (prepend_scheme == "first")
        m.prepend = Tokenizer::Impl::Prepend::First;
      else if (prepend_scheme == "never")
        m.prepend = Tokenizer::Impl::Prepend::Never;
      else
        fail(origin, "Metaspace prepend_scheme '" + prepend_scheme + "' is unknown");
    } else {
      // Llama 2's HF file: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")].
      bool has_prepend = false;
      if (auto n = j.find("normalizer"); n != j.end()) {
        visit(*n, [&](const json& c) {
          if (type_of(c) == "Prepend") has_prepend = true;
        });
      }
      m.prepend = has_prepend ? Tokenizer::Impl::Prepend::Always : Tokenizer::Impl::Prepend::Never;
    }
    m.strip_leading_space = m.prepend != Tokenizer::Impl::Prepend::Never;
  }

  tokbuild::guess_bos_eos(m);
  return m;
}

}  // namespace

namespace tokbuild {

void add_token(Tokenizer::Impl& m, const std::string& origin, const std::string& s,
               std::int64_t id) {
  if (id < 0 || static_cast<std::uint64_t>(id) >= kTokMaxVocab) {
    throw_at(origin, "token '" + s.substr(0, 64) + "' has id " + std::to_string(id) +
                         " outside [0, " + std::to_string(kTokMaxVocab) + ")");
  }
  if (s.size() > kTokMaxTokenBytes) {
    throw_at(origin, "token with id " + std::to_string(id) + " is " + std::to_string(s.size()) +
                         " bytes, over the limit of " + std::to_string(kTokMaxTokenBytes));
  }
  if (m.id_to_tok.size() <= static_cast<std::size_t>(id)) m.id_to_tok.resize(id + 1);
  auto [it, fresh] = m.vocab.emplace(s, static_cast<std::int32_t>(id));
  if (!fresh && it->second != id) {
    // Added tokens repeat vocab entries with the same id; a different id is a broken file.
    throw_at(origin, "token '" + s.substr(0, 64) + "' has two ids (" + std::to_string(it->second) +
                         ", " + std::to_string(id) + ")");
  }
  if (!m.id_to_tok[id].empty() && m.id_to_tok[id] != s) {
    throw_at(origin, "id " + std::to_string(id) + " is used by two tokens ('" +
                         m.id_to_tok[id].substr(0, 64) + "', '" + s.substr(0, 64) + "')");
  }
  m.id_to_tok[id] = s;
}

void index_added(Tokenizer::Impl& m) {
  std::stable_sort(m.added.begin(), m.added.end(), [](const auto& a, const auto& b) {
    return a.content.size() > b.content.size();
  });
  m.special.assign(m.id_to_tok.size(), false);
  m.is_added.assign(m.id_to_tok.size(), false);
  for (const auto& a : m.added) {
    m.special[a.id] = a.special;
    m.is_added[a.id] = true;
  }
}

void find_byte_tokens(Tokenizer::Impl& m) {
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    std::string t = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
    m.byte_tokens[b] = m.find(t);
  }
}

void guess_bos_eos(Tokenizer::Impl& m) {
  auto pick = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      for (const auto& a : m.added) {
        if (a.content == n) return a.id;
      }
    }
    return -1;
  };
  m.bos = pick({"<|begin_of_text|>", "<s>"});
  m.eos = pick({"<|end_of_text|>", "</s>", "<|eot_id|>"});
}

void throw_at(const std::string& origin, const std::string& what) {
  fail(origin, what);
}

}  // namespace tokbuild

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    fail(origin, std::string("not valid JSON: ") + e.what());
  }
  try {
    return Tokenizer(std::make_unique<Impl>(build(j, origin)));
  } catch (const json::exception& e) {
    fail(origin, std::string("unexpected value type: ") + e.what());
  }
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open tokenizer '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

std::optional<Tokenizer> Tokenizer::from_model_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(dir) / "tokenizer.json";
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  return from_file(p.string());
}

}  // namespace kwaai::engine
