// `kwaainet generate`: run a whole model locally and stream the generated tokens.
#include <spdlog/spdlog.h>

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
#include "cli/generation_io.hpp"
#include "engine/core/backend.hpp"
#include "engine/llama/generate.hpp"
#include "engine/llama/model.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/tokenizer.hpp"

namespace kwaai::cli {

namespace {

struct GenerateConfig {
  std::string model;
  std::string prompt;
  std::string prompt_ids;
  std::int64_t max_new_tokens = 128;
  engine::llama::SamplingOptions sampling;
  std::string device;
  std::string quant = "none";
  bool ignore_eos = false;
  bool json = false;
};

void run_generate(const GenerateConfig& c, const GlobalOptions& global) {
  using namespace kwaai::engine;
  const std::string device = !c.device.empty()                 ? c.device
                             : !global.device_override.empty() ? global.device_override
                                                               : "auto";
  auto src = open_model(c.model);
  Prompt p = resolve_prompt(c.model, *src, c.prompt, c.prompt_ids, "generate");
  const std::optional<Tokenizer>& tok = p.tokenizer;
  const std::vector<std::int32_t>& prompt = p.ids;

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
  opt.sampling = c.sampling;
  opt.stop_tokens = stop_tokens(*src, tok, c.ignore_eos);

  // Warm-up, not timed: one short prefill and one decode step in a throwaway cache, so the
  // timings below exclude first touches of the weights and scratch (and, on Vulkan, pipeline
  // creation), as benchmarks exclude them.
  {
    const std::int64_t n = std::min<std::int64_t>(4, static_cast<std::int64_t>(prompt.size()));
    if (n > 0) {
      llama::KvCache warm = model.make_cache(1, n + 1);
      model.forward(std::span(prompt.data(), static_cast<std::size_t>(n)), 1, n, warm, 0);
      model.forward(std::span(prompt.data(), 1), 1, 1, warm, n);
    }
  }

  // The stream goes to stdout, or to stderr under --json so stdout stays one JSON document.
  std::FILE* stream = c.json ? stderr : stdout;
  TokenPrinter printer(stream, tok ? &*tok : nullptr);
  auto on_token = [&](std::int32_t id) { printer(id); };
  const llama::GenerateResult res = llama::generate(model, prompt, opt, on_token);
  printer.finish();
  const double tps = res.decode_tokens_per_s();
  spdlog::info(
      "generate: prefill {} prompt tokens in {:.3f} s ({:.1f} tok/s), {} new tokens, decode "
      "{:.1f} tok/s (warm-up excluded)",
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
  add_sampling_flags(sub, cfg->sampling);
  sub->add_option("--device", cfg->device,
                  "cpu | vulkan[:N] | auto (default: KWAAI_DEVICE, else auto)");
  add_quant_option(sub, cfg->quant, "weight quantization at load");
  sub->add_flag("--ignore-eos", cfg->ignore_eos, "do not stop at the end-of-sequence token");
  sub->add_flag("--json", cfg->json, "print a JSON summary as the last stdout line");
  sub->callback([cfg, &global] { run_generate(*cfg, global); });
}

}  // namespace kwaai::cli
