// `kwaainet quantize IN OUT.gguf --type q8_0|q4_0|q4_k_s|q4_k_m|q5_k_s|q5_k_m|q6_k`: IN a GGUF
// file (re-quantized with llama-quantize's per-tensor rule, engine/model/quantize.hpp, the
// tokenizer and every other metadata key kept) or an HF Llama-family folder (converted as
// llama.cpp's convert + llama-quantize would, with its tokenizer.json as GGUF metadata).
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "cli/commands.hpp"
#include "engine/core/formats.hpp"
#include "engine/model/quantize.hpp"

namespace kwaai::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, type;
  int threads = 0;
};

int run_quantize(const QuantizeArgs& a) {
  const engine::QuantMix mix = engine::quant_mix_from_name(a.type);
  const int threads = a.threads > 0
                          ? a.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const engine::QuantizeReport r = std::filesystem::is_directory(a.in)
                                       ? engine::quantize_hf(a.in, a.out, mix, threads)
                                       : engine::quantize_gguf(a.in, a.out, mix, threads);
  std::string counts;
  for (const auto& [t, n] : r.count)
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, engine::dtype_name(t));
  std::cout << fmt::format("{} -> {} ({}): {} tensors ({}), {:.1f} MB -> {:.1f} MB in {:.1f} s\n",
                           a.in, a.out, engine::quant_mix_name(mix), r.tensors, counts,
                           r.bytes_in / 1e6, r.bytes_out / 1e6, r.seconds);
  return 0;
}

}  // namespace

void register_quantize(CLI::App& app, GlobalOptions&) {
  auto* cmd = app.add_subcommand(
      "quantize",
      "HF folder or GGUF file -> a GGUF file of a quantization mix (as llama-quantize)");
  auto a = std::make_shared<QuantizeArgs>();
  cmd->add_option("in", a->in, "input: a .gguf file or an HF Llama-family folder")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("out", a->out, "output .gguf file")->required();
  cmd->add_option("--type", a->type, "target: " + engine::quant_mix_choices())
      ->required()
      ->check([](const std::string& v) -> std::string {
        try {
          engine::quant_mix_from_name(v);
          return {};
        } catch (const std::exception& e) {
          return e.what();
        }
      });
  cmd->add_option("--threads", a->threads, "conversion threads (default: every hardware thread)")
      ->check(CLI::Range(0, 1024));
  cmd->callback([a] {
    if (run_quantize(*a) != 0) throw CLI::RuntimeError(1);
  });
}

}  // namespace kwaai::cli
