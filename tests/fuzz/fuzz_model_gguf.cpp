// Fuzz target: the GGUF v3 parser over arbitrary file bytes (tight limits so a run stays small),
// then typed metadata access, a full read of every accepted tensor's bytes and the GGUF tokenizer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <stdexcept>

#include "engine/model/gguf.hpp"
#include "engine/model/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  kwaai::engine::GgufLimits lim;
  lim.max_total_items = 1u << 16;
  try {
    auto h = kwaai::engine::parse_gguf(file, "fuzz", lim);
    for (const auto& [k, v] : h.kv) {
      try {
        if (v.is_integer()) (void)v.as_int();
        (void)v.as_float();
      } catch (const std::runtime_error&) {
      }
    }
    unsigned sum = 0;
    for (const auto& t : h.tensors) {
      if (h.data_start + t.offset + t.nbytes > size) std::abort();  // validation broke
      for (std::uint64_t i = 0; i < t.nbytes; ++i) sum += data[h.data_start + t.offset + i];
    }
    volatile unsigned sink = sum;
    (void)sink;
    // A tokenizer carried in the metadata, if any, must load or fail cleanly.
    if (auto t = kwaai::engine::Tokenizer::from_gguf_metadata(h, "fuzz")) {
      auto ids = t->encode("hello world 123", true);
      (void)t->decode(ids);
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
