// What `kwaainet generate` and `kwaainet client generate` share: the prompt (text through the
// model's tokenizer, or --prompt-ids), the stop tokens, and the token stream they print while
// generating. Only the engine behind the tokens differs between the two commands.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/llama/sampling.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/tokenizer.hpp"

namespace kwaai::cli {

// --temperature, --top-k, --top-p, --repetition-penalty, --seed into `s` (defaults shown).
void add_sampling_flags(CLI::App* cmd, engine::llama::SamplingOptions& s);

// "1, 2,3" -> {1, 2, 3}; throws std::invalid_argument naming the bad entry.
std::vector<std::int32_t> parse_id_list(const std::string& text);

struct Prompt {
  std::optional<engine::Tokenizer> tokenizer;  // HF tokenizer.json or GGUF metadata, if present
  std::vector<std::int32_t> ids;
};

// Exactly one of `text` and `ids_text` must be set; text needs a tokenizer (BOS added). Ids are
// checked against the model's vocabulary. `command` prefixes every error message.
Prompt resolve_prompt(const std::string& model_path, const engine::ModelSource& src,
                      const std::string& text, const std::string& ids_text, const char* command);

// The config's EOS ids and the tokenizer's, unless ignore_eos.
std::vector<std::int32_t> stop_tokens(const engine::ModelSource& src,
                                      const std::optional<engine::Tokenizer>& tok, bool ignore_eos);

// Prints tokens as they come: text when there is a tokenizer (the whole tail is decoded again
// each time so multi-byte characters split over tokens come out whole), else comma-separated ids.
class TokenPrinter {
 public:
  TokenPrinter(std::FILE* out, const engine::Tokenizer* tok) : out_(out), tok_(tok) {}
  void operator()(std::int32_t id);
  // Ends the line and flushes, so a summary on stderr follows it even when stdout is a pipe.
  void finish();

 private:
  std::FILE* out_;
  const engine::Tokenizer* tok_;
  std::vector<std::int32_t> generated_;
  std::string shown_;  // text printed so far
};

}  // namespace kwaai::cli
