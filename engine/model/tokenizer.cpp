#include "engine/model/tokenizer.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "engine/model/tokenizer_impl.hpp"
#include "engine/model/tokenizer_text.hpp"

namespace kwaai::engine {

using nlohmann::json;

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0x4A>" -> 0x4A; -1 for anything else.
int byte_token_value(std::string_view t) {
  if (t.size() != 6 || !t.starts_with("<0x") || t[5] != '>') return -1;
  int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

// Merges by rank with a min-heap over adjacent pairs (ties: leftmost), O(n log n) per word so a
// long Llama 2 segment (one "word" for SentencePiece) stays cheap.
void Tokenizer::Impl::bpe(std::vector<std::int32_t> sym, std::vector<std::int32_t>& out) const {
  const std::size_t n = sym.size();
  if (n == 0) return;
  std::vector<std::int64_t> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<std::int64_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::int64_t>(i + 1) : -1;
  }
  struct Cand {
    std::int32_t rank;
    std::int64_t pos;
    std::int32_t left, right, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](std::int64_t i) {
    if (i < 0 || next[i] < 0) return;
    const std::int32_t a = sym[i], b = sym[next[i]];
    if (a < 0 || b < 0) return;
    auto it = merges.find((static_cast<std::uint64_t>(a) << 32) | static_cast<std::uint32_t>(b));
    if (it != merges.end()) heap.push({it->second.first, i, a, b, it->second.second});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<std::int64_t>(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    // Stale entries: the left symbol changed or its right neighbour is no longer the same.
    if (sym[c.pos] != c.left || next[c.pos] < 0 || sym[next[c.pos]] != c.right) continue;
    const std::int64_t r = next[c.pos];
    sym[c.pos] = c.merged;
    sym[r] = -2;  // dead
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (std::int64_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
}

void Tokenizer::Impl::encode_sp(std::string_view text, bool first,
                                std::vector<std::int32_t>& out) const {
  std::vector<char32_t> cps = tok::utf8_decode(text);
  for (auto& c : cps) {
    if (c == ' ') c = kSpaceMark;
  }
  if (prepend == Prepend::Always || (prepend == Prepend::First && first)) {
    cps.insert(cps.begin(), kSpaceMark);
  }
  auto word = [&](std::size_t b, std::size_t e) {
    std::vector<std::int32_t> sym;
    auto push_unk = [&] {
      if (unk < 0) return;
      if (fuse_unk && !sym.empty() && sym.back() == unk) return;
      sym.push_back(unk);
    };
    for (std::size_t i = b; i < e; ++i) {
      std::string ch;
      tok::utf8_append(ch, cps[i]);
      std::int32_t id = find(ch);
      if (id >= 0) {
        sym.push_back(id);
      } else if (byte_fallback) {
        bool all = true;
        for (unsigned char byte : ch) all = all && byte_tokens[byte] >= 0;
        if (all) {
          for (unsigned char byte : ch) sym.push_back(byte_tokens[byte]);
        } else {
          push_unk();
        }
      } else {
        push_unk();
      }
    }
    bpe(std::move(sym), out);
  };
  if (!metaspace_split) {
    word(0, cps.size());
    return;
  }
  std::size_t b = 0;
  for (std::size_t i = 1; i <= cps.size(); ++i) {
    if (i == cps.size() || cps[i] == kSpaceMark) {
      word(b, i);
      b = i;
    }
  }
}

void Tokenizer::Impl::encode_bl(std::string_view text, std::vector<std::int32_t>& out) const {
  const std::vector<char32_t> cps = tok::utf8_decode(text);
  const auto& b2u = tok::byte_to_unicode();
  for (auto [b, e] : tok::llama3_split(cps)) {
    std::string piece = tok::utf8_encode(cps, b, e);  // original bytes
    std::string mapped;
    for (unsigned char byte : piece) tok::utf8_append(mapped, b2u[byte]);
    if (ignore_merges) {
      if (std::int32_t id = find(mapped); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    std::vector<std::int32_t> sym;
    for (unsigned char byte : piece) {
      std::string ch;
      tok::utf8_append(ch, b2u[byte]);
      std::int32_t id = find(ch);
      if (id < 0) id = unk;
      if (id < 0) {
        throw std::runtime_error("tokenizer: byte 0x" + std::to_string(byte) +
                                 " has no token in a byte-level vocabulary");
      }
      sym.push_back(id);
    }
    bpe(std::move(sym), out);
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer::Kind Tokenizer::kind() const {
  return impl_->kind;
}
std::int64_t Tokenizer::vocab_size() const {
  return static_cast<std::int64_t>(impl_->id_to_tok.size());
}
std::int32_t Tokenizer::bos_id() const {
  return impl_->bos;
}
std::int32_t Tokenizer::eos_id() const {
  return impl_->eos;
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  std::int32_t id = impl_->find(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_to_tok.size()) {
    throw std::out_of_range("tokenizer: id " + std::to_string(id) + " outside [0, " +
                            std::to_string(impl_->id_to_tok.size()) + ")");
  }
  return impl_->id_to_tok[id];
}

bool Tokenizer::is_special(std::int32_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->special.size() && impl_->special[id];
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const Impl& m = *impl_;
  std::vector<std::int32_t> out;
  if (add_bos && m.bos >= 0) out.push_back(m.bos);
  // Added tokens are cut out of the raw text first; the pieces between go through BPE.
  std::size_t seg = 0;
  bool first = true;
  auto flush = [&](std::size_t end) {
    if (end > seg) {
      std::string_view part = text.substr(seg, end - seg);
      if (m.kind == Kind::SentencePieceBpe) {
        m.encode_sp(part, first, out);
      } else {
        m.encode_bl(part, out);
      }
      first = false;
    }
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const Impl::Added* hit = nullptr;
    for (const auto& a : m.added) {
      if (!a.content.empty() && text.compare(i, a.content.size(), a.content) == 0) {
        hit = &a;
        break;  // sorted longest first
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    flush(i);
    out.push_back(hit->id);
    i += hit->content.size();
    seg = i;
  }
  flush(text.size());
  return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::string bytes;
  for (std::int32_t id : ids) {
    const std::string tok = id_to_token(id);
    if (is_special(id)) {
      if (!skip_special) bytes += tok;
      continue;
    }
    if (m.kind == Kind::ByteLevelBpe) {
      if (m.is_added[id]) {
        bytes += tok;
        continue;
      }
      for (char32_t cp : tok::utf8_decode(tok)) {
        int b = tok::unicode_to_byte(cp);
        if (b >= 0) {
          bytes.push_back(static_cast<char>(b));
        } else {
          tok::utf8_append(bytes, cp);
        }
      }
      continue;
    }
    // SentencePiece: <0xNN> byte pieces, "▁" -> space.
    if (int b = byte_token_value(tok); b >= 0 && m.byte_tokens[b] == id) {
      bytes.push_back(static_cast<char>(b));
      continue;
    }
    for (char32_t cp : tok::utf8_decode(tok)) tok::utf8_append(bytes, cp == kSpaceMark ? U' ' : cp);
  }
  // Like HF's Strip decoder: one leading space of the whole text (the one the normalizer
  // prepended) goes; a special token written first keeps the space after it ("<s> Hello").
  if (m.kind == Kind::SentencePieceBpe && m.strip_leading_space && !bytes.empty() &&
      bytes[0] == ' ') {
    bytes.erase(0, 1);
  }
  return tok::utf8_sanitize(bytes);
}

}  // namespace kwaai::engine
