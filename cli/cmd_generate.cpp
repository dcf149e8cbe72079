// `kwaainet generate`: run a whole model locally and stream the generated tokens.
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "engine/core/backend.hpp"
#include "engine/llama/generate.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/tokenizer.hpp"

namespace kwaai::cli {

namespace {

struct GenerateConfig {
  std::string model;
  std::string prompt;
  std::string prompt_ids;
  std::int64_t max_new_tokens = 128;
  float temperature = 0.0f;
  std::int64_t top_k = 0;
  float top_p = 1.0f;
  float repetition_penalty = 1.0f;
  std::uint64_t seed = 0;
  std::string device;
  std::string quant = "none";
  bool ignore_eos = false;
  bool json = false;
};

std::vector<std::int32_t> parse_ids(const std::string& text) {
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

void run_generate(const GenerateConfig& c, const GlobalOptions& global) {
  using namespace kwaai::engine;
  if (c.prompt.empty() == c.prompt_ids.empty())
    throw std::invalid_argument("generate: give exactly one of --prompt and --prompt-ids");
  const std::string device = !c.device.empty()                 ? c.device
                             : !global.device_override.empty() ? global.device_override
                                                               : "auto";
  auto src = open_model(c.model);
  std::optional<Tokenizer> tok;
  // HF folder: tokenizer.json; GGUF: the tokenizer.ggml.* metadata (either may be absent).
  if (std::filesystem::is_directory(c.model))
    tok = Tokenizer::from_model_dir(c.model);
  else if (src->format() == "gguf")
    tok = Tokenizer::from_gguf(c.model);
  std::vector<std::int32_t> prompt;
  if (!c.prompt_ids.empty()) {
    prompt = parse_ids(c.prompt_ids);
  } else {
    if (!tok)
      throw std::invalid_argument(
          "generate: --prompt needs a tokenizer (tokenizer.json in the folder or GGUF metadata); "
          "use --prompt-ids for " +
          c.model);
    prompt = tok->encode(c.prompt, /*add_bos=*/true);
  }

  auto be = make_backend(device);
  spdlog::info("generate: {} on {} ({}), quant {}", src->config().describe(), be->name(),
               be->description(), c.quant);
  const auto t_load = std::chrono::steady_clock::now();
  llama::LlamaModel model(*be, *src, quant_from_name(c.quant));
  spdlog::info("generate: weights uploaded ({:.1f} MiB) in {:.2f} s",
               static_cast<double>(model.weight_bytes()) / (1 << 20),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count());

  llama::GenerateOptions opt;
  opt.max_new_tokens = c.max_new_tokens;
  opt.sampling = {c.temperature, c.top_k, c.top_p, c.repetition_penalty, c.seed};
  if (!c.ignore_eos) {
    for (auto id : src->config().eos_ids) opt.stop_tokens.push_back(static_cast<std::int32_t>(id));
    if (tok && tok->eos_id() >= 0) opt.stop_tokens.push_back(tok->eos_id());
  }

  // The stream goes to stdout, or to stderr under --json so stdout stays one JSON document.
  std::FILE* stream = c.json ? stderr : stdout;
  std::vector<std::int32_t> generated;
  std::string shown;  // text printed so far: decoding the whole tail keeps multi-byte runs whole
  auto on_token = [&](std::int32_t id) {
    generated.push_back(id);
    if (tok) {
      const std::string text = tok->decode(generated, /*skip_special=*/true);
      if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
        std::fputs(text.c_str() + shown.size(), stream);
        shown = text;
      }
    } else {
      std::fprintf(stream, "%s%d", generated.size() > 1 ? "," : "", id);
    }
    std::fflush(stream);
  };
  const llama::GenerateResult res = llama::generate(model, prompt, opt, on_token);
  std::fputc('\n', stream);
  std::fflush(stream);  // before the stderr summary, also when stdout is a pipe
  const double tps = res.decode_tokens_per_s();
  spdlog::info(
      "generate: {} prompt tokens in {:.3f} s ({:.1f} tok/s), {} new tokens, decode "
      "{:.1f} tok/s",
      res.prompt_tokens, res.prefill_seconds,
      res.prefill_seconds > 0 ? res.prompt_tokens / res.prefill_seconds : 0.0, res.ids.size(), tps);
  if (c.json) {
    nlohmann::json j;
    j["ids"] = res.ids;
    if (tok) j["text"] = tok->decode(res.ids, /*skip_special=*/true);
    j["prompt_tokens"] = res.prompt_tokens;
    j["tokens_per_s"] = tps;
    j["prefill_tokens_per_s"] =
        res.prefill_seconds > 0 ? res.prompt_tokens / res.prefill_seconds : 0.0;
    j["stopped_on_eos"] = res.stopped;
    j["device"] = be->name();
    j["quant"] = c.quant;
    std::cout << j.dump() << std::endl;
  }
}

}  // namespace

void register_generate(CLI::App& app, GlobalOptions& global) {
  auto cfg = std::make_shared<GenerateConfig>();
  CLI::App* sub = app.add_subcommand("generate", "Generate tokens with a whole model locally");
  sub->add_option("--model", cfg->model, "HF checkpoint folder or .gguf file")->required();
  sub->add_option("--prompt", cfg->prompt, "prompt text (needs the model's tokenizer.json)");
  sub->add_option("--prompt-ids", cfg->prompt_ids, "prompt as comma-separated token ids");
  sub->add_option("--max-new-tokens", cfg->max_new_tokens, "tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 20));
  sub->add_option("--temperature", cfg->temperature, "0 = greedy")->capture_default_str();
  sub->add_option("--top-k", cfg->top_k, "0 = off")->capture_default_str();
  sub->add_option("--top-p", cfg->top_p, "1 = off")->capture_default_str();
  sub->add_option("--repetition-penalty", cfg->repetition_penalty, "1 = off")
      ->capture_default_str();
  sub->add_option("--seed", cfg->seed, "sampling seed")->capture_default_str();
  sub->add_option("--device", cfg->device,
                  "cpu | vulkan[:N] | auto (default: KWAAI_DEVICE, else auto)");
  sub->add_option("--quant", cfg->quant, "weight quantization at load: none | q8_0 | q4_0")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "q8_0", "q4_0"}));
  sub->add_flag("--ignore-eos", cfg->ignore_eos, "do not stop at the end-of-sequence token");
  sub->add_flag("--json", cfg->json, "print a JSON summary as the last stdout line");
  sub->callback([cfg, &global] { run_generate(*cfg, global); });
}

}  // namespace kwaai::cli
