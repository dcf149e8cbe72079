// `kwaainet tokenize --model M (--text T | --file F) [--add-bos] [--json]`, like llama-tokenize:
// M is a folder holding tokenizer.json (+ tokenizer_config.json), a tokenizer.json file or a
// .gguf file carrying tokenizer.ggml.* metadata. Prints the ids comma-separated (what
// `generate --prompt-ids` takes), or with --json one object {"ids": [...], "pieces": [...]}
// (pieces are the vocabulary strings). No BOS unless --add-bos.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "cli/commands.hpp"
#include "engine/model/tokenizer.hpp"

namespace kwaai::cli {
namespace {

struct TokenizeArgs {
  std::string model, text, file;
  bool add_bos = false, json = false;
};

engine::Tokenizer open_tokenizer(const std::string& m) {
  namespace fs = std::filesystem;
  if (fs::is_directory(m)) {
    if (auto t = engine::Tokenizer::from_model_dir(m)) return std::move(*t);
    throw std::runtime_error("tokenize: " + m + " has no tokenizer.json");
  }
  if (m.ends_with(".gguf")) {
    if (auto t = engine::Tokenizer::from_gguf(m)) return std::move(*t);
    throw std::runtime_error("tokenize: " + m + " carries no tokenizer metadata");
  }
  return engine::Tokenizer::from_file(m);
}

void run_tokenize(const TokenizeArgs& a) {
  std::string text = a.text;
  if (!a.file.empty()) {
    std::ifstream f(a.file, std::ios::binary);
    if (!f) throw std::runtime_error("tokenize: cannot read " + a.file);
    text.assign(std::istreambuf_iterator<char>(f), {});
  }
  const engine::Tokenizer tok = open_tokenizer(a.model);
  const auto ids = tok.encode(text, a.add_bos);
  if (a.json) {
    nlohmann::json j;
    j["ids"] = ids;
    j["pieces"] = nlohmann::json::array();
    for (auto id : ids) j["pieces"].push_back(tok.id_to_token(id));
    // Invalid UTF-8 inside a piece (a byte-level fragment) is replaced rather than refused.
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  std::string line;
  for (std::size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
  std::cout << line << "\n";
}

}  // namespace

void register_tokenize(CLI::App& app, GlobalOptions&) {
  auto* cmd = app.add_subcommand("tokenize", "Text to token ids with a model's tokenizer");
  auto a = std::make_shared<TokenizeArgs>();
  cmd->add_option("--model", a->model, "folder with tokenizer.json, a tokenizer.json, or a .gguf")
      ->required()
      ->check(CLI::ExistingPath);
  auto* text = cmd->add_option("--text", a->text, "text to tokenize");
  auto* file =
      cmd->add_option("--file", a->file, "file whose bytes are the text")->check(CLI::ExistingFile);
  text->excludes(file);
  cmd->add_flag("--add-bos", a->add_bos, "prepend the BOS token");
  cmd->add_flag("--json", a->json, "print {\"ids\": [...], \"pieces\": [...]}");
  cmd->callback([a, text, file] {
    if (text->count() == 0 && file->count() == 0) throw CLI::RequiredError("--text or --file");
    run_tokenize(*a);
  });
}

}  // namespace kwaai::cli
