// Fuzz target: the safetensors header parser over arbitrary file bytes. Every accepted tensor's
// byte range is read in full, so ASan catches a range that validation let out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <stdexcept>

#include "engine/model/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    auto h = kwaai::engine::parse_safetensors(file, "fuzz");
    unsigned sum = 0;
    for (const auto& t : h.tensors) {
      if (h.data_start + t.end > size || t.begin > t.end) std::abort();  // validation broke
      for (std::uint64_t i = t.begin; i < t.end; ++i) sum += data[h.data_start + i];
    }
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
