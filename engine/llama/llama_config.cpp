#include "engine/llama/llama_config.hpp"

#include <stdexcept>

namespace kwaai::engine::llama {

std::int64_t block_params(const ModelConfig& c) {
  const std::int64_t attn = c.hidden * q_dim(c) * 2 + c.hidden * kv_dim(c) * 2;
  if (c.is_bloom())  // biased Q/K/V/O, up and down; two LayerNorms with bias
    return attn + 2 * c.hidden * c.intermediate + (q_dim(c) + 2 * kv_dim(c) + c.hidden) +
           (c.intermediate + c.hidden) + 4 * c.hidden;
  if (c.is_falcon())  // LayerNorms carry weight and bias; the MLP is up and down only
    return attn + 2 * c.hidden * c.intermediate + 2 * c.falcon_norms * c.hidden;
  const std::int64_t mlp = 3 * c.hidden * c.intermediate;
  if (c.experts > 0) return attn + c.experts * mlp + c.experts * c.hidden + 2 * c.hidden;
  return attn + mlp + 2 * c.hidden;
}

void validate_llama(const ModelConfig& c) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("llama config: " + what);
  };
  require(c.hidden > 0 && c.intermediate > 0 && c.layers > 0 && c.vocab > 0,
          "sizes must be > 0 (" + c.describe() + ")");
  require(c.heads > 0 && c.kv_heads > 0 && c.heads % c.kv_heads == 0,
          "heads " + std::to_string(c.heads) + " must be a positive multiple of kv_heads " +
              std::to_string(c.kv_heads));
  require(c.head_dim > 0 && c.head_dim % 2 == 0,
          "head_dim " + std::to_string(c.head_dim) + " must be even and > 0");
  require(c.rms_eps > 0, "rms_eps must be > 0");
}

ModelConfig known_config(const std::string& name) {
  ModelConfig c;
  if (name == "llama-3-8b" || name == "llama-3-70b") {
    const bool big = name == "llama-3-70b";
    c.hidden = big ? 8192 : 4096;
    c.intermediate = big ? 28672 : 14336;
    c.layers = big ? 80 : 32;
    c.heads = big ? 64 : 32;
    c.kv_heads = 8;
    c.head_dim = 128;
    c.vocab = 128256;
    c.rope.theta = 500000.0f;
    c.bos_id = 128000;
    c.eos_ids = {128001};
    c.max_position = 8192;
  } else if (name == "llama-2-7b") {
    c.hidden = 4096;
    c.intermediate = 11008;
    c.layers = 32;
    c.heads = 32;
    c.kv_heads = 32;
    c.head_dim = 128;
    c.vocab = 32000;
    c.rope.theta = 10000.0f;
    c.bos_id = 1;
    c.eos_ids = {2};
    c.max_position = 4096;
  } else if (name == "tinyllama-1.1b") {
    // TinyLlama-1.1B (Llama-2 architecture, GQA 32/4): big enough that its mat-vecs, not
    // per-dispatch overhead, dominate a step, small enough for a CPU-type Vulkan device.
    c.hidden = 2048;
    c.intermediate = 5632;
    c.layers = 22;
    c.heads = 32;
    c.kv_heads = 4;
    c.head_dim = 64;
    c.vocab = 32000;
    c.rope.theta = 10000.0f;
    c.bos_id = 1;
    c.eos_ids = {2};
    c.max_position = 2048;
  } else if (name == "stories260k") {
    c.hidden = 64;
    c.intermediate = 172;
    c.layers = 5;
    c.heads = 8;
    c.kv_heads = 4;
    c.head_dim = 8;
    c.vocab = 512;
    c.tied_embeddings = true;
    c.eos_ids = {2};
    c.max_position = 512;
  } else {
    throw std::invalid_argument(
        "unknown model shape '" + name +
        "' (expected llama-3-8b, llama-2-7b, llama-3-70b, tinyllama-1.1b or stories260k)");
  }
  c.rms_eps = 1e-5f;
  c.torch_dtype = "synthetic";
  return c;
}

}  // namespace kwaai::engine::llama
