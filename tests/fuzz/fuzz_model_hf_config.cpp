// Fuzz target: HF config.json parsing and validation.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/model/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto c = kwaai::engine::parse_hf_config(text, "fuzz");
    c.validate();  // an accepted config must stay valid
    (void)c.describe();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
