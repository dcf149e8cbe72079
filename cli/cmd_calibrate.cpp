// `kwaainet calibrate`: Petals' block count for this device's memory, one block's measured
// compute rates, the network estimate and the announced throughput; saved as a per-device
// profile that `kwaainet serve` reads (calibration/profile.hpp). Formulas: docs/calibration.md.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "calibration/calibrate.hpp"
#include "calibration/profile.hpp"
#include "cli/commands.hpp"

namespace kwaai::cli {

namespace {

struct CalibrateFlags {
  calibration::CalibrateOptions opt;
  std::string device;
  double network_mbit = 0;
  bool json = false;
  bool no_save = false;
};

void print_table(const calibration::Profile& p) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0, kMiB = 1024.0 * 1024.0;
  std::printf("model          %s (quant %s)\n", p.model.c_str(), p.quant.c_str());
  std::printf("device         %s: %s\n", p.device.c_str(), p.device_name.c_str());
  std::printf("memory         %.2f GiB (%s), autograd reserve %.2f GiB\n", p.memory_bytes / kGiB,
              p.memory_source.c_str(), p.autograd_bytes / kGiB);
  std::printf("per block      %.2f MiB weights + %.2f MiB cache (%lld tokens)\n",
              p.block_bytes / kMiB, p.cache_bytes_per_block / kMiB,
              static_cast<long long>(p.attn_cache_tokens));
  std::printf("num_blocks     %lld of %lld\n", static_cast<long long>(p.num_blocks),
              static_cast<long long>(p.num_layers));
  std::printf("forward_rps    %.1f tokens/s per block%s\n", p.forward_rps,
              p.quick ? " (--quick)" : "");
  std::printf("inference_rps  %.1f tokens/s per block\n", p.inference_rps);
  std::printf("network_rps    %.1f (%s)\n", p.network_rps, p.network_source.c_str());
  std::printf("throughput     %.1f tokens/s (announced)\n", p.throughput);
}

}  // namespace

void register_calibrate(CLI::App& app, GlobalOptions& global) {
  auto f = std::make_shared<CalibrateFlags>();
  auto* cmd = app.add_subcommand(
      "calibrate", "Blocks that fit this device (Petals' rule) and measured throughput");
  cmd->add_option("--model", f->opt.model, "Model to calibrate for (HF folder or .gguf)");
  cmd->add_option("--synthetic", f->opt.synthetic,
                  "Random weights of a published shape: llama-3-8b | llama-2-7b | llama-3-70b | tinyllama-1.1b | "
                  "stories260k");
  cmd->add_option("--device", f->device,
                  "cpu | vulkan | vulkan:N | auto (default: KWAAI_DEVICE or cpu)");
  add_quant_option(cmd, f->opt.quant, "Block weight format");
  cmd->add_option("--layers", f->opt.layers,
                  "--synthetic only: pretend the model has N layers (caps num_blocks)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--network-mbit", f->network_mbit,
                  "Link speed in Mbit/s, min(up, down), measured elsewhere (default: Petals' "
                  "100 Mbit/s estimate)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--relay", f->opt.using_relay, "Reachable only through a relay (x0.2 network)");
  cmd->add_flag("--quick", f->opt.quick, "Shorter measurement (64-token forward, 16 decode steps)");
  cmd->add_flag("--json", f->json, "Print one JSON object instead of a table");
  cmd->add_flag("--no-save", f->no_save, "Do not write the profile");
  cmd->callback([f, &global] {
    f->opt.device = !f->device.empty()                ? f->device
                    : !global.device_override.empty() ? global.device_override
                                                      : std::string("cpu");
    f->opt.network_bits_per_second = f->network_mbit * 1e6;
    const calibration::Profile p = calibration::calibrate(f->opt);
    nlohmann::json out = p.to_json();
    if (!f->no_save) {
      if (auto dir = calibration::default_profile_dir()) {
        const auto path = calibration::save_profile(*dir, p);
        spdlog::info("calibrate: profile saved to {}", path.string());
        out["profile_path"] = path.string();
      } else {
        spdlog::warn("calibrate: neither XDG_CACHE_HOME nor HOME is set; profile not saved");
      }
    }
    if (f->json)
      std::cout << out.dump() << std::endl;
    else
      print_table(p);
  });
}

}  // namespace kwaai::cli
