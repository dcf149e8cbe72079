// Llama shape helpers over engine/model's ModelConfig (the one config type of the engine), and
// the published shapes the synthetic benchmark builds models from.
#pragma once

#include <cstdint>
#include <string>

#include "engine/model/config.hpp"

namespace kwaai::engine::llama {

inline std::int64_t q_dim(const ModelConfig& c) {
  return c.heads * c.head_dim;
}
inline std::int64_t kv_dim(const ModelConfig& c) {
  return c.kv_heads * c.head_dim;
}
// Parameters of one decoder block (matrices + the two norm vectors).
std::int64_t block_params(const ModelConfig& c);
// Checks what the blocks rely on (throws std::invalid_argument naming the field).
void validate_llama(const ModelConfig& c);

// "llama-3-8b", "llama-2-7b", "llama-3-70b", "stories260k"; throws std::invalid_argument.
ModelConfig known_config(const std::string& name);

}  // namespace kwaai::engine::llama
