#include "cli/generation_io.hpp"

#include <charconv>
#include <filesystem>
#include <stdexcept>
#include <string_view>

namespace kwaai::cli {

void add_sampling_flags(CLI::App* cmd, engine::llama::SamplingOptions& s) {
  cmd->add_option("--temperature", s.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "0 = off")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "1 = off")->capture_default_str();
  cmd->add_option("--repetition-penalty", s.repetition_penalty, "1 = off")->capture_default_str();
  cmd->add_option("--seed", s.seed, "sampling seed")->capture_default_str();
}

std::vector<std::int32_t> parse_id_list(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t i = 0;
  while (i <= text.size()) {
    const std::size_t comma = std::min(text.find(',', i), text.size());
    std::string_view tok(text.data() + i, comma - i);
    while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
    while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
    std::int32_t v = 0;
    auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (tok.empty() || ec != std::errc{} || end != tok.data() + tok.size())
      throw std::invalid_argument("--prompt-ids: '" + std::string(tok) +
                                  "' is not a token id (expected e.g. 1,2,3)");
    ids.push_back(v);
    i = comma + 1;
  }
  return ids;
}

Prompt resolve_prompt(const std::string& model_path, const engine::ModelSource& src,
                      const std::string& text, const std::string& ids_text, const char* command) {
  if (text.empty() == ids_text.empty())
    throw std::invalid_argument(std::string(command) +
                                ": give exactly one of --prompt and --prompt-ids");
  Prompt p;
  if (std::filesystem::is_directory(model_path))
    p.tokenizer = engine::Tokenizer::from_model_dir(model_path);
  else if (src.format() == "gguf")
    p.tokenizer = engine::Tokenizer::from_gguf(model_path);
  if (!ids_text.empty()) {
    p.ids = parse_id_list(ids_text);
  } else {
    if (!p.tokenizer)
      throw std::invalid_argument(
          std::string(command) +
          ": --prompt needs a tokenizer (tokenizer.json in the folder or GGUF metadata); use "
          "--prompt-ids for " +
          model_path);
    p.ids = p.tokenizer->encode(text, /*add_bos=*/true);
  }
  const std::int64_t vocab = src.config().vocab;
  for (const std::int32_t id : p.ids)
    if (id < 0 || id >= vocab)
      throw std::invalid_argument(std::string(command) + ": token id " + std::to_string(id) +
                                  " outside the vocabulary [0, " + std::to_string(vocab) + ")");
  return p;
}

std::vector<std::int32_t> stop_tokens(const engine::ModelSource& src,
                                      const std::optional<engine::Tokenizer>& tok,
                                      bool ignore_eos) {
  std::vector<std::int32_t> stops;
  if (ignore_eos) return stops;
  for (auto id : src.config().eos_ids) stops.push_back(static_cast<std::int32_t>(id));
  if (tok && tok->eos_id() >= 0) stops.push_back(tok->eos_id());
  return stops;
}

void TokenPrinter::operator()(std::int32_t id) {
  generated_.push_back(id);
  if (tok_) {
    const std::string text = tok_->decode(generated_, /*skip_special=*/true);
    if (text.size() > shown_.size() && text.compare(0, shown_.size(), shown_) == 0) {
      std::fputs(text.c_str() + shown_.size(), out_);
      shown_ = text;
    }
  } else {
    std::fprintf(out_, "%s%d", generated_.size() > 1 ? "," : "", id);
  }
  std::fflush(out_);
}

void TokenPrinter::finish() {
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace kwaai::cli
