// ModelEnds (embedding, final norm, LM head without any block) against LlamaModel on the real
// stories260K checkpoint.
#include <gtest/gtest.h>

#include <random>

#include "engine/llama/model.hpp"
#include "engine/llama/model_ends.hpp"
#include "engine/model/model_source.hpp"
#include "tests/engine/llama/llama_test_util.hpp"

namespace kwaai::engine::llama {
namespace {

TEST(ClientModelEnds, EmbeddingAndLogitsEqualTheWholeModel) {
  auto be = make_backend("cpu");
  auto src = open_model(test::stories_dir());
  LlamaModel model(*be, *src);
  ModelEnds ends(*be, *src);
  EXPECT_TRUE(ends.tied());  // stories260K ties the head to the embedding
  EXPECT_LT(ends.weight_bytes(), model.weight_bytes());

  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> ids(9);
  for (auto& id : ids) id = static_cast<std::int32_t>(rng() % model.config().vocab);
  EXPECT_EQ(ends.embed(ids), model.embed(ids));

  // Logits: the blocks run outside (here: the model's own executor), the head on ModelEnds.
  const test::Reference ref;
  const auto prompt = ref.i32("prompt_ids");
  const auto t = static_cast<std::int64_t>(prompt.size());
  const std::int64_t h = model.config().hidden;
  KvCache c1 = model.make_cache(1, t), c2 = model.make_cache(1, t);
  const auto want = model.forward(prompt, 1, t, c1, 0);
  auto hidden = model.blocks().forward(ends.embed(prompt), 1, t, c2, 0);
  const std::vector<float> last(hidden.end() - h, hidden.end());
  const auto got = ends.logits(last, 1);
  EXPECT_LT(test::rel_l2(got, want), 1e-6);
  EXPECT_LT(test::rel_l2(got, ref.f32("logits_last")), test::tolerance(*be));
}

TEST(ClientModelEnds, VulkanEndsEqualTheVulkanModel) {
  KWAAI_BACKEND_OR_SKIP(be, "vulkan:0");
  auto src = open_model(test::stories_dir());
  LlamaModel model(*be, *src);
  ModelEnds ends(*be, *src);
  const test::Reference ref;
  const auto prompt = ref.i32("prompt_ids");
  const auto t = static_cast<std::int64_t>(prompt.size());
  const std::int64_t h = model.config().hidden;
  EXPECT_EQ(ends.embed(prompt), model.embed(prompt));
  KvCache c1 = model.make_cache(1, t), c2 = model.make_cache(1, t);
  const auto want = model.forward(prompt, 1, t, c1, 0);
  auto hidden = model.blocks().forward(ends.embed(prompt), 1, t, c2, 0);
  const std::vector<float> last(hidden.end() - h, hidden.end());
  EXPECT_LT(test::rel_l2(ends.logits(last, 1), want), 1e-5);
}

TEST(ClientModelEnds, BadInputsThrowWithContext) {
  auto be = make_backend("cpu");
  auto src = open_model(test::stories_dir());
  ModelEnds ends(*be, *src);
  const std::int32_t bad[] = {1, 512};
  EXPECT_THROW(ends.embed(bad), std::out_of_range);
  EXPECT_THROW(ends.logits(std::vector<float>(63), 1), std::invalid_argument);
  EXPECT_THROW(ends.logits({}, 0), std::invalid_argument);
  EXPECT_TRUE(ends.embed({}).empty());
}

}  // namespace
}  // namespace kwaai::engine::llama
