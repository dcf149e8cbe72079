// `kwaainet bench`: --ops (op throughput per device, cli/cmd_bench_ops.cpp) or the tokens/s
// modes (--model / --synthetic, cli/bench_tokens.cpp). Without a mode flag it runs --ops.
#include <memory>
#include <sstream>
#include <stdexcept>

#include "cli/bench_ops.hpp"
#include "cli/bench_tokens.hpp"
#include "cli/commands.hpp"
#include "engine/core/formats.hpp"

namespace kwaai::cli {

namespace {

struct BenchFlags {
  bool ops = false;
  bool quick = false;
  bool json = false;
  std::string devices;
  std::string quant = "none";
  BenchTokensOptions tokens;
};

std::vector<std::string> split_devices(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string s; std::getline(ss, s, ',');)
    if (!s.empty()) out.push_back(s);
  if (out.empty()) throw std::invalid_argument("bench: --devices is empty");
  return out;
}

}  // namespace

void register_bench(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<BenchFlags>();
  auto* cmd = app.add_subcommand(
      "bench", "Measure op throughput (--ops) or tokens/s (--model, --synthetic)");
  cmd->add_flag("--ops", flags->ops,
                "Op throughput: decode mat-vec per dtype, prefill matmul, copy");
  cmd->add_option("--devices", flags->devices,
                  "Comma-separated device specs, side by side (default: KWAAI_DEVICE or cpu)");
  cmd->add_flag("--quick", flags->quick, "Smaller buffers and fewer repetitions");
  cmd->add_flag("--json", flags->json, "Print one JSON document instead of a table");
  std::vector<std::string> quants{"none", "f16"};
  for (const auto& f : engine::formats())
    if (f.load_quant) quants.emplace_back(f.name);
  cmd->add_option("--quant", flags->quant,
                  "Weights for the tokens/s modes: --model: " + engine::quant_choices() +
                      " (none: the file's stored format); --synthetic: f16 (= none) | the "
                      "block formats")
      ->capture_default_str()
      ->check(CLI::IsMember(quants));
  add_bench_tokens_options(*cmd, flags->tokens);
  cmd->callback([flags, &global] {
    const std::string list = !flags->devices.empty()           ? flags->devices
                             : !global.device_override.empty() ? global.device_override
                                                               : std::string("cpu");
    const auto devices = split_devices(list);
    if (bench_tokens_selected(flags->tokens)) {
      if (flags->ops)
        throw std::invalid_argument("bench: --ops cannot be combined with --model/--synthetic");
      flags->tokens.devices = devices;
      flags->tokens.quant = flags->quant;
      flags->tokens.json = flags->json;
      run_bench_tokens(flags->tokens);
      return;
    }
    run_bench_ops({devices, flags->quick, flags->json});
  });
}

}  // namespace kwaai::cli
