// Tokenizer built from a HF `tokenizer.json` (model.type == "BPE"), in the two flavours the
// Llama family uses:
//  * SentencePiece-style BPE (Llama 2, TinyLlama, Mistral): spaces become U+2581 "▁", a "▁" is
//    prepended, merges apply by rank over characters, and characters missing from the vocab
//    fall back to <0xNN> byte tokens (byte_fallback).
//  * Byte-level BPE (Llama 3): text is split by the Llama 3 pre-tokenizer pattern (hand-written
//    UTF-8 scanner, no regex), each piece's bytes are mapped to printable code points with the
//    GPT-2 byte<->unicode table, and merges apply by rank.
// Added/special tokens (e.g. <|begin_of_text|>, <s>) are matched in the raw text before BPE.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kwaai::engine {

struct GgufHeader;
class GgufWriter;

class Tokenizer {
 public:
  enum class Kind { SentencePieceBpe, ByteLevelBpe };

  // Throws std::runtime_error naming `origin` and the problem on malformed input.
  static Tokenizer from_json(std::string_view json_text,
                             const std::string& origin = "tokenizer.json");
  static Tokenizer from_file(const std::string& path);
  // From the tokenizer.ggml.* metadata of a GGUF file: llama.cpp's "llama" vocabulary
  // (SentencePiece; merges derived from the token scores) or "gpt2" with pre-tokenizer
  // "llama-bpe" (Llama 3 byte-level, explicit merges). nullopt when the file has no tokenizer.
  static std::optional<Tokenizer> from_gguf(const std::string& path);
  static std::optional<Tokenizer> from_gguf_metadata(const GgufHeader& header,
                                                     const std::string& origin);
  // `dir/tokenizer.json` if it exists, else nullopt.
  static std::optional<Tokenizer> from_model_dir(const std::string& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  Kind kind() const;
  std::int64_t vocab_size() const;  // highest id + 1
  // BOS / EOS ids guessed from the added tokens (<s>, </s>, <|begin_of_text|>, <|end_of_text|>,
  // <|eot_id|>); -1 when unknown.
  std::int32_t bos_id() const;
  std::int32_t eos_id() const;

  // Encodes text; special tokens written in the text are recognised. `add_bos` prepends bos_id()
  // (when known) — the Llama convention.
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos = false) const;
  // Decodes ids to UTF-8 (byte-fallback runs reassembled, "▁" -> space, the leading space that
  // the SentencePiece normalizer added is removed). Special tokens are dropped when
  // skip_special, else written as their text. Unknown ids throw std::out_of_range.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const;

  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(std::int32_t id) const;  // raw vocab string; throws on bad id
  bool is_special(std::int32_t id) const;

  // Writes this tokenizer as llama.cpp's tokenizer.ggml.* metadata, the inverse of
  // from_gguf_metadata: SentencePiece-style BPE as model "llama" with each merged token scored
  // by minus its merge rank (so score-ordered merging is rank-ordered merging), byte-level BPE
  // as "gpt2" + pre "llama-bpe" with the merges. Token types: added special tokens control (3),
  // other added ones user-defined (4), <unk> unknown (2), <0xNN> byte (6), else normal (1).
  void write_gguf_metadata(GgufWriter& w) const;

  struct Impl;  // opaque; defined in engine/model/tokenizer_impl.hpp

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kwaai::engine
