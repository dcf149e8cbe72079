// stories260K against the float64 reference (shared/models/stories260K/reference.safetensors):
// hidden states after every block, the KV-cache decode step, final logits and 128 greedy ids,
// on the CPU backend and on Vulkan (lavapipe in CI).
#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <vector>

#include "engine/llama/generate.hpp"
#include "engine/llama/model.hpp"
#include "engine/llama/sampling.hpp"
#include "engine/llama/span_executor.hpp"
#include "engine/model/model_source.hpp"
#include "tests/engine/llama/llama_test_util.hpp"

namespace kwaai::engine::llama {
namespace {

using test::Reference;
using test::rel_l2;

class StoriesReference : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { src_ = open_model(test::stories_dir()); }
  std::unique_ptr<ModelSource> src_;
  Reference ref_;
};

TEST_P(StoriesReference, PrefillHiddenStatesMatchAfterEveryBlockThenDecodeStepUsesTheCache) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam());
  const ModelConfig& cfg = src_->config();
  const std::vector<std::int32_t> prompt = ref_.i32("prompt_ids");
  const auto t = static_cast<std::int64_t>(prompt.size());
  // One single-block executor per layer, so each block's output is compared on its own input
  // chain and the per-block caches are exercised by the decode step afterwards.
  std::vector<std::unique_ptr<SpanExecutor>> spans;
  std::vector<KvCache> caches;
  for (std::int64_t i = 0; i < cfg.layers; ++i) {
    spans.push_back(std::make_unique<SpanExecutor>(*be, *src_, i, i + 1));
    caches.push_back(spans.back()->make_cache(1, t + 1));
  }
  std::vector<float> h = ref_.f32("hidden_in");
  for (std::int64_t i = 0; i < cfg.layers; ++i) {
    h = spans[i]->forward(h, 1, t, caches[i], 0);
    const double err = rel_l2(h, ref_.f32("hidden_after_block_" + std::to_string(i)));
    RecordProperty("prefill_rel_l2_block_" + std::to_string(i), std::to_string(err));
    EXPECT_LT(err, test::tolerance(*be)) << "prefill, block " << i;
  }
  std::vector<float> d = ref_.f32("decode_hidden_in");
  for (std::int64_t i = 0; i < cfg.layers; ++i) {
    d = spans[i]->forward(d, 1, 1, caches[i], t);
    const double err = rel_l2(d, ref_.f32("decode_hidden_after_block_" + std::to_string(i)));
    EXPECT_LT(err, test::tolerance(*be)) << "decode step, block " << i;
  }
}

TEST_P(StoriesReference, EmbeddingsAndFinalLogitsMatch) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam());
  LlamaModel model(*be, *src_);
  const std::vector<std::int32_t> prompt = ref_.i32("prompt_ids");
  EXPECT_LT(rel_l2(model.embed(prompt), ref_.f32("hidden_in")), 1e-6);
  KvCache cache = model.make_cache(1, 32);
  const auto logits = model.forward(prompt, 1, static_cast<std::int64_t>(prompt.size()), cache, 0);
  EXPECT_LT(rel_l2(logits, ref_.f32("logits_last")), test::tolerance(*be));
}

TEST_P(StoriesReference, GreedyIdsFromBosAreIdentical) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam());
  LlamaModel model(*be, *src_);
  GenerateOptions opt;
  opt.max_new_tokens = 128;
  const std::int32_t bos = 1;
  const GenerateResult res = generate(model, std::span(&bos, 1), opt);
  EXPECT_EQ(res.ids, ref_.i32("greedy_from_bos"));
}

TEST_P(StoriesReference, SpansZeroToTwoThenTwoToFiveEqualTheWholeSpan) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam());
  SpanExecutor whole(*be, *src_, 0, 5), first(*be, *src_, 0, 2), second(*be, *src_, 2, 5);
  const std::vector<float> in = ref_.f32("hidden_in");
  const std::int64_t t = 17;
  KvCache cw = whole.make_cache(1, t + 1), c1 = first.make_cache(1, t + 1),
          c2 = second.make_cache(1, t + 1);
  const auto ref = whole.forward(in, 1, t, cw, 0);
  const auto split = second.forward(first.forward(in, 1, t, c1, 0), 1, t, c2, 0);
  EXPECT_LT(rel_l2(split, ref), 1e-6);
  // And the decode step after it, through the caches of both halves.
  const std::vector<float> din = ref_.f32("decode_hidden_in");
  const auto dref = whole.forward(din, 1, 1, cw, t);
  const auto dsplit = second.forward(first.forward(din, 1, 1, c1, t), 1, 1, c2, t);
  EXPECT_LT(rel_l2(dsplit, dref), 1e-6);
}

// Q8_0 weights (and, on the CPU, 8-bit activations in the dot products) perturb the logits by
// ~5% on this 64-wide model (measured 0.048 on the CPU). Free-running greedy decoding from BOS
// diverges at once: the f32 margin between the two best first tokens is 0.108 logits (1.1%).
// So agreement is checked where it is meaningful: the next token after the reference prompt,
// and teacher-forced top-1 agreement along the reference greedy sequence (measured 112/128).
TEST_P(StoriesReference, Q8_0WeightsStayCloseAndAgreeOnTheGreedyIds) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam());
  LlamaModel model(*be, *src_, Quant::Q8_0);
  const std::vector<std::int32_t> prompt = ref_.i32("prompt_ids");
  KvCache cache = model.make_cache(1, 32);
  const auto logits = model.forward(prompt, 1, static_cast<std::int64_t>(prompt.size()), cache, 0);
  const double err = rel_l2(logits, ref_.f32("logits_last"));
  RecordProperty("q8_0_logits_rel_l2", std::to_string(err));
  std::printf("[ q8_0 ] %s: final-logits rel. L2 error %.3g\n", GetParam().c_str(), err);
  EXPECT_LT(err, 0.1);
  EXPECT_GT(err, 1e-5) << "the weights do not look quantized";
  EXPECT_EQ(argmax(logits), ref_.i32("decode_token").at(0));

  const auto greedy = ref_.i32("greedy_from_bos");
  std::vector<std::int32_t> seq{1};
  seq.insert(seq.end(), greedy.begin(), greedy.end());
  KvCache tf = model.make_cache(1, 130);
  int agree = 0;
  for (std::int64_t i = 0; i < 128; ++i)
    agree += argmax(model.forward(std::span(&seq[i], 1), 1, 1, tf, i)) == greedy[i];
  RecordProperty("q8_0_teacher_forced_agreement", agree);
  std::printf("[ q8_0 ] %s: teacher-forced greedy agreement %d/128\n", GetParam().c_str(), agree);
  EXPECT_GE(agree, 100);
}

INSTANTIATE_TEST_SUITE_P(Devices, StoriesReference, ::testing::Values("cpu", "vulkan"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kwaai::engine::llama
