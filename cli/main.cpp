#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <exception>
#include <iostream>

#include "cli/commands.hpp"

namespace {

// The only place the process environment is read; values are logged once at debug level.
kwaai::cli::GlobalOptions read_environment() {
  kwaai::cli::GlobalOptions g;
  if (const char* d = std::getenv("KWAAI_DEVICE")) g.device_override = d;
  if (const char* l = std::getenv("KWAAI_LOG_LEVEL")) g.log_level = l;
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr so that --json output on stdout stays one clean document.
  spdlog::set_default_logger(spdlog::stderr_color_mt("kwaainet"));
  kwaai::cli::GlobalOptions global = read_environment();

  CLI::App app{"kwaainet — a native compute node for Petals/Hivemind swarms"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("kwaainet ") + KWAAI_VERSION);
  app.add_option("--log-level", global.log_level, "trace|debug|info|warn|error")
      ->capture_default_str();
  app.parse_complete_callback([&] {
    spdlog::set_level(spdlog::level::from_str(global.log_level));
    if (!global.device_override.empty())
      spdlog::debug("KWAAI_DEVICE={} (default for --device)", global.device_override);
  });

  kwaai::cli::register_devices(app, global);
  kwaai::cli::register_bench(app, global);
  kwaai::cli::register_generate(app, global);
  kwaai::cli::register_dht(app, global);
  kwaai::cli::register_calibrate(app, global);
  kwaai::cli::register_client(app, global);
  kwaai::cli::register_serve(app, global);
  kwaai::cli::register_quantize(app, global);
  kwaai::cli::register_tokenize(app, global);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
