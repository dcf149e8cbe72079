// The tokens/s modes of `kwaainet bench` (prefill and decode through the span executor),
// hooked into cmd_bench.cpp: that command owns the subcommand and the ops mode; these
// functions add the model flags and run when --model or --synthetic is given.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kwaai::cli {

struct BenchTokensOptions {
  std::vector<std::string> devices;  // "cpu", "vulkan:0", ... (side by side, one run)
  std::string model;                 // HF folder or .gguf
  std::string synthetic;             // llama-3-8b | llama-2-7b | llama-3-70b | stories260k
  std::int64_t layers = 0;           // 0: every layer of the model
  // --model: none (the stored format) or a load-time target; --synthetic: none = f16, or a
  // block format to generate.
  std::string quant = "none";
  std::int64_t prompt_len = 128;
  std::int64_t gen_len = 32;
  std::int64_t batch = 1;
  bool json = false;
  bool profile = false;  // per-op time of each phase (backend profiling on while timed)
};

// Adds --model, --synthetic, --layers, --prompt-len, --gen-len, --batch and --profile to
// `bench`.
// (--devices, --quant and --json are the bench command's own flags; it copies them in.)
void add_bench_tokens_options(CLI::App& bench, BenchTokensOptions& opt);
// True when the tokens/s mode was asked for (--model or --synthetic).
bool bench_tokens_selected(const BenchTokensOptions& opt);
// Checks every flag and opens every device, then runs each device in turn: the whole model
// (embedding, blocks, final norm, LM head) and the blocks alone, prefill and decode, warm-ups
// excluded. Progress goes to stderr, then a table to stdout (or, with opt.json, one JSON object
// {"rows": [...], "devices": [...]}). Returns that object.
nlohmann::json run_bench_tokens(const BenchTokensOptions& opt);

}  // namespace kwaai::cli
