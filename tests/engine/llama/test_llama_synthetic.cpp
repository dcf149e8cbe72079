// The synthetic model source used by the tokens/s benchmark: real shapes, requested dtypes,
// finite outputs through a span.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/llama/llama_config.hpp"
#include "engine/llama/span_executor.hpp"
#include "engine/llama/synthetic_source.hpp"

namespace kwaai::engine::llama {
namespace {

TEST(SyntheticSource, GivesRealShapesInTheRequestedDtype) {
  SyntheticSource src(known_config("llama-3-8b"), DType::Q4_0);
  const auto q = src.info("model.layers.31.self_attn.q_proj.weight");
  EXPECT_EQ(q.dtype, DType::Q4_0);
  EXPECT_EQ(q.shape, (Shape{4096, 4096}));
  EXPECT_EQ(src.info("model.layers.0.mlp.down_proj.weight").shape, (Shape{4096, 14336}));
  EXPECT_EQ(src.info("model.layers.0.self_attn.k_proj.weight").shape, (Shape{1024, 4096}));
  EXPECT_EQ(src.info("model.layers.0.input_layernorm.weight").dtype, DType::F32);
  EXPECT_FALSE(src.has("model.layers.32.mlp.up_proj.weight"));
  EXPECT_THROW(src.load("model.layers.0.mlp.gate.weight"), std::out_of_range);
  // The ends: embeddings and LM head in the matrix dtype, the final norm in f32.
  EXPECT_EQ(src.info("model.embed_tokens.weight").shape, (Shape{128256, 4096}));
  EXPECT_EQ(src.info("lm_head.weight").dtype, DType::Q4_0);
  EXPECT_EQ(src.info("model.norm.weight").shape, (Shape{4096}));
  EXPECT_EQ(src.names().size(), 32u * 9u + 3u);
  EXPECT_EQ(block_params(src.config()), 218103808 + 2 * 4096);
}

TEST(SyntheticSource, RunsThroughASpanWithFiniteOutputs) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (DType dt : {DType::F16, DType::Q8_0, DType::Q4_0}) {
    SyntheticSource src(known_config("stories260k"), dt, seed);
    // stories260K's down_proj (K = 172) cannot be block-quantized: it comes as f16.
    EXPECT_EQ(src.info("model.layers.0.mlp.down_proj.weight").dtype,
              is_quantized(dt) ? DType::F16 : dt);
    auto be = make_backend("cpu");
    SpanExecutor exec(*be, src, 0, 5);
    KvCache cache = exec.make_cache(2, 8);
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    std::normal_distribution<float> n;
    std::vector<float> in(2 * 4 * 64);
    for (auto& x : in) x = n(rng);
    for (float x : exec.forward(in, 2, 4, cache, 0)) ASSERT_TRUE(std::isfinite(x));
  }
}

}  // namespace
}  // namespace kwaai::engine::llama
