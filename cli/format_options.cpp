// Flags whose values come from the weight-format table (engine/core/formats.hpp), so a new
// format shows up in every command's --help and checks without touching the commands.
#include <sstream>
#include <vector>

#include "cli/commands.hpp"
#include "engine/core/formats.hpp"

namespace kwaai::cli {

CLI::Option* add_quant_option(CLI::App* cmd, std::string& target, const std::string& what) {
  std::vector<std::string> choices{"none"};
  for (const auto& f : engine::formats())
    if (f.load_quant) choices.emplace_back(f.name);
  return cmd->add_option("--quant", target, what + ": " + engine::quant_choices())
      ->capture_default_str()
      ->check(CLI::IsMember(choices));
}

}  // namespace kwaai::cli
