// Each `kwaainet` subcommand lives in its own cmd_*.cpp and registers itself on the app.
// Commands are thin: they parse flags into a config struct and call the layers below.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace kwaai::cli {

// Settings read once at start-up (environment overrides included) and shared by commands.
struct GlobalOptions {
  std::string log_level = "info";
  std::string device_override;  // KWAAI_DEVICE, if set: default for every --device flag
};

// --quant VALUE with the choices of the weight-format table ("none" plus every load-time
// quantization target), checked by CLI11 before the command runs.
CLI::Option* add_quant_option(CLI::App* cmd, std::string& target, const std::string& what);

// Registration functions, one per cmd_*.cpp, called from main.cpp in this order.
void register_devices(CLI::App& app, GlobalOptions& global);
void register_bench(CLI::App& app, GlobalOptions& global);
void register_generate(CLI::App& app, GlobalOptions& global);
void register_dht(CLI::App& app, GlobalOptions& global);
void register_calibrate(CLI::App& app, GlobalOptions& global);
void register_client(CLI::App& app, GlobalOptions& global);
void register_serve(CLI::App& app, GlobalOptions& global);
void register_quantize(CLI::App& app, GlobalOptions& global);
void register_tokenize(CLI::App& app, GlobalOptions& global);

}  // namespace kwaai::cli
