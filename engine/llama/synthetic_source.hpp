// A ModelSource of random weights with the real shapes of a published model, generated in
// memory (no file), for the tokens/s benchmark: timing depends on shapes and dtypes only. It
// holds every block plus the model's ends (embeddings, final norm, LM head), each tensor
// generated when it is loaded.
// Matrices are produced directly in the requested dtype (f16 / q8_0 / q4_0 / f32) with a spread
// like a trained model's (std ~0.02), norms are ~1; values are finite, never NaN or denormal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/model_source.hpp"

namespace kwaai::engine::llama {

class SyntheticSource final : public ModelSource {
 public:
  // cfg.layers may be lowered (--layers N) to time a prefix of the model.
  SyntheticSource(ModelConfig cfg, DType matrix_dtype, std::uint64_t seed = 1);

  const ModelConfig& config() const override { return cfg_; }
  std::string format() const override { return "synthetic"; }
  const std::string& path() const override { return path_; }
  std::vector<std::string> names() const override;
  bool has(const std::string& name) const override;
  TensorInfo info(const std::string& name) const override;
  HostTensor load(const std::string& name) const override;
  std::uint64_t bytes_read() const override { return bytes_read_; }

 private:
  DType dtype_for(const Shape& shape) const;
  ModelConfig cfg_;
  DType dtype_;
  std::uint64_t seed_;
  std::string path_;
  mutable std::uint64_t bytes_read_ = 0;
};

}  // namespace kwaai::engine::llama
