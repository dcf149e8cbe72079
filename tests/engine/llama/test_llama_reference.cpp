// stories260K against the float64 reference (shared/models/stories260K/reference.safetensors):
// hidden states after every block, the KV-cache decode step, final logits and 128 greedy ids,
// on the CPU backend and on Vulkan (lavapipe in CI); and Q8_0 weights against the float64
// forward of q8_reference.hpp with the same weights rounded exactly as GGML's Q8_0 does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/llama/generate.hpp"
#include "engine/llama/model.hpp"
#include "engine/llama/sampling.hpp"
#include "engine/llama/span_executor.hpp"
#include "engine/model/model_source.hpp"
#include "tests/engine/llama/llama_test_util.hpp"
#include "tests/engine/llama/q8_reference.hpp"

namespace kwaai::engine::llama {
namespace {

using test::MatrixKind;
using test::Q8Plan;
using test::Q8ReferenceModel;
using test::Reference;
using test::rel_l2;

std::vector<float> as_f32(const std::vector<double>& v) {
  return {v.begin(), v.end()};
}

// For RecordProperty: std::to_string's fixed 6 decimals would print 1e-7 as 0.
std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// The 8-bit activation model that reproduces a backend's Q8_0 products exactly. Vulkan's
// shaders dequantize the weights and keep f32 activations. The CPU backend rounds activations
// to 8 bits in its decode-sized products (<= 8 rows, engine/cpu/matmul.cpp, like llama.cpp's
// CPU path) and runs larger ones through sgemm on dequantized weights, so a 17-token prefill
// has f32 activations everywhere except in the one-row LM head, and decode steps have 8-bit
// activations in every quantized product.
// The CPU backend quantizes the input rows of every quantized product to 8 bits, prefill and
// decode alike (its packed integer kernels, as llama.cpp's); Vulkan multiplies f32 activations.
Q8Plan q8_plan_for(const Backend& be) {
  return Q8Plan::all(be.kind() == BackendKind::Cpu);
}

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
    RecordProperty("prefill_rel_l2_block_" + std::to_string(i), sci(err));
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

// Q8_0 on this 64-wide model moves the logits by ~5% (0.048 relative L2): that is the format,
// not our code — the float64 forward with exactly-rounded Q8_0 weights has the same error and
// the same first greedy token (306, not the f32 model's 461, whose f32 margin is 0.108 logits),
// and both backends reproduce that exact Q8_0 forward (docs/engine.md, "Q8_0"). So the greedy
// ids are checked against the exact Q8_0 reference, while the distance to the f32 reference is
// bounded by what the format gives (and teacher-forced agreement with it stays high).
TEST_P(StoriesReference, Q8_0WeightsStayCloseAndAgreeOnTheGreedyIds) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam());
  LlamaModel model(*be, *src_, Quant{DType::Q8_0});
  const std::vector<std::int32_t> prompt = ref_.i32("prompt_ids");
  KvCache cache = model.make_cache(1, 32);
  const auto logits = model.forward(prompt, 1, static_cast<std::int64_t>(prompt.size()), cache, 0);
  const double err = rel_l2(logits, ref_.f32("logits_last"));
  Q8ReferenceModel exact_prefill(*src_, q8_plan_for(*be));
  const double err_exact = rel_l2(logits, as_f32(exact_prefill.prefill(prompt)));
  RecordProperty("q8_0_logits_rel_l2", sci(err));
  RecordProperty("q8_0_logits_rel_l2_vs_exact_q8_0", sci(err_exact));
  std::printf("[ q8_0 ] %s: final-logits rel. L2 error %.3g vs f32, %.3g vs exact Q8_0\n",
              GetParam().c_str(), err, err_exact);
  // Measured: 0.048 with f32 activations (Vulkan), 0.067 with 8-bit ones (CPU): the format's own
  // error on this 64-wide model, as the exact Q8_0 forward below shows.
  EXPECT_LT(err, be->kind() == BackendKind::Cpu ? 0.08 : 0.06) << "the format's own error";
  EXPECT_GT(err, 1e-5) << "the weights do not look quantized";
  EXPECT_LT(err_exact, test::tolerance(*be)) << "the Q8_0 forward is not the exact one";
  EXPECT_EQ(argmax(logits), ref_.i32("decode_token").at(0));

  // Free-running greedy from BOS, 128 steps, each step's logits against the exact Q8_0
  // forward fed the same history: the same greedy ids all along (measured: identical; the
  // exact forward's smallest top-2 margin on this path is 0.005 logits, far above the ~1e-6
  // differences between it and the backends), and logits within the backend's float
  // tolerance. On the CPU an activation within ~1e-5 of a rounding tie may round the other way
  // than in float64 (measured: once in 128 steps, 0.0054 at that step), so a few such steps are
  // allowed there.
  Q8ReferenceModel exact(*src_, q8_plan_for(*be));
  KvCache dec = model.make_cache(1, 130);
  std::vector<std::int32_t> ours, theirs;
  std::int32_t next = 1;  // BOS
  int off_steps = 0;
  double worst = 0;
  for (std::int64_t i = 0; i < 128; ++i) {
    const std::vector<float> l = model.forward(std::span(&next, 1), 1, 1, dec, i);
    const std::vector<double> r = exact.step(next);
    const double e = rel_l2(l, as_f32(r));
    worst = std::max(worst, e);
    off_steps += e >= test::tolerance(*be);
    ours.push_back(argmax(l));
    theirs.push_back(Q8ReferenceModel::argmax(r));
    next = ours.back();
  }
  RecordProperty("q8_0_decode_worst_rel_l2_vs_exact_q8_0", sci(worst));
  std::printf("[ q8_0 ] %s: 128 greedy steps vs exact Q8_0: worst %.3g, %d above %.0e\n",
              GetParam().c_str(), worst, off_steps, test::tolerance(*be));
  EXPECT_EQ(ours, theirs);
  EXPECT_LE(off_steps, be->kind() == BackendKind::Cpu ? 3 : 0);
  EXPECT_LT(worst, 0.02);

  // Teacher-forced top-1 agreement with the f32 reference's greedy sequence (measured
  // 113/128 on the CPU, 114/128 on Vulkan).
  const auto greedy = ref_.i32("greedy_from_bos");
  std::vector<std::int32_t> seq{1};
  seq.insert(seq.end(), greedy.begin(), greedy.end());
  KvCache tf = model.make_cache(1, 130);
  int agree = 0;
  for (std::int64_t i = 0; i < 128; ++i)
    agree += argmax(model.forward(std::span(&seq[i], 1), 1, 1, tf, i)) == greedy[i];
  RecordProperty("q8_0_teacher_forced_agreement", agree);
  std::printf("[ q8_0 ] %s: teacher-forced greedy agreement %d/128\n", GetParam().c_str(), agree);
  EXPECT_GE(agree, 105);
}

INSTANTIATE_TEST_SUITE_P(Devices, StoriesReference, ::testing::Values("cpu", "vulkan"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kwaai::engine::llama

namespace kwaai::engine::llama {
namespace {

// The float64 forward of q8_reference.hpp, with nothing quantized, is an exact reference too:
// it must reproduce the independent one (else its Q8_0 verdicts would mean nothing).
TEST(StoriesExactQ8Reference, UnquantizedItReproducesTheIndependentFloat64Reference) {
  auto src = open_model(test::stories_dir());
  Reference ref;
  Q8ReferenceModel m(*src, Q8Plan::none());
  const double err = rel_l2(as_f32(m.prefill(ref.i32("prompt_ids"))), ref.f32("logits_last"));
  RecordProperty("logits_rel_l2", sci(err));
  EXPECT_LT(err, 1e-6);
  EXPECT_EQ(m.greedy({1}, 128), ref.i32("greedy_from_bos"));
}

TEST(StoriesExactQ8Reference, HalfScaleRoundingFollowsIeee) {
  // 1/127 lies between the halves 0.0078125 + 8 and + 9 ulps (2^-17), nearer the first.
  EXPECT_EQ(test::round_to_f16(1.0f / 127.0f), 0.00787353515625);
  EXPECT_EQ(test::round_to_f16(-1.0f / 127.0f), -0.00787353515625);
  // Subnormal: 1e-7 is 1.68 units of 2^-24 -> 2 units.
  EXPECT_EQ(test::round_to_f16(1e-7f), std::ldexp(2.0, -24));
  // A tie (1 + 2^-11, halfway between 1 and 1 + 2^-10) goes to the even mantissa, 1.
  EXPECT_EQ(test::round_to_f16(1.0f + std::ldexp(1.0f, -11)), 1.0);
  EXPECT_EQ(test::round_to_f16(65504.0f), 65504.0);
}

// Our load-time quantizer (engine/model convert_tensor -> engine/core Q8_0) gives bit for bit
// the round trip the reference computes from GGML's definition, for every block-quantizable
// matrix of the model.
TEST(StoriesExactQ8Reference, EngineQ8_0RoundTripEqualsTheGgmlDefinitionOnEveryMatrix) {
  auto src = open_model(test::stories_dir());
  std::vector<std::string> names{kEmbedName};
  for (std::int64_t l = 0; l < src->config().layers; ++l)
    for (BlockTensor t : {BlockTensor::Q, BlockTensor::K, BlockTensor::V, BlockTensor::O,
                          BlockTensor::Gate, BlockTensor::Up})
      names.push_back(block_tensor_name(l, t));
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const HostTensor w = src->load(name, DType::F32);
    const HostTensor q =
        convert_tensor(TensorView{w.name, w.dtype, w.shape, w.bytes()}, DType::Q8_0);
    ASSERT_EQ(q.dtype, DType::Q8_0);
    std::vector<float> ours(static_cast<std::size_t>(w.numel()));
    to_f32(DType::Q8_0, q.data.data(), ours.data(), w.numel());
    std::vector<float> f(ours.size());
    std::memcpy(f.data(), w.data.data(), f.size() * sizeof(float));
    std::vector<double> want(f.begin(), f.end());
    test::q8_0_round_trip(want.data(), want.size());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < ours.size(); ++i)
      mismatches +=
          static_cast<double>(ours[i]) != static_cast<double>(static_cast<float>(want[i]));
    EXPECT_EQ(mismatches, 0u);
  }
}

// Where Q8_0's error comes from: one matrix kind quantized at a time (the numbers in
// docs/engine.md). The per-kind errors are independent and add in quadrature to the error of
// all of them together, no kind dominates, and down_proj (K = 172) cannot be quantized.
TEST(StoriesExactQ8Reference, Q8_0ErrorIsSpreadOverTheMatrixKinds) {
  auto src = open_model(test::stories_dir());
  Reference ref;
  const auto prompt = ref.i32("prompt_ids");
  const auto f32_logits = ref.f32("logits_last");
  auto report = [&](const char* what, const Q8Plan& plan) {
    Q8ReferenceModel m(*src, plan);
    const double err = rel_l2(as_f32(m.prefill(prompt)), f32_logits);
    m.reset();
    const std::vector<double> first = m.step(1);
    const std::int32_t top = Q8ReferenceModel::argmax(first);
    std::printf(
        "[ q8_0 ] %-10s logits rel. L2 %.4f, first id from BOS %d (logit 306 %.3f, "
        "461 %.3f)\n",
        what, err, top, first[306], first[461]);
    RecordProperty(std::string("q8_0_rel_l2_") + what, sci(err));
    return err;
  };
  const double all = report("all", Q8Plan::all());
  double sum_sq = 0;
  for (int k = 0; k < static_cast<int>(MatrixKind::Count); ++k) {
    const auto kind = static_cast<MatrixKind>(k);
    const double e =
        report(test::kMatrixKindNames[static_cast<std::size_t>(k)], Q8Plan::only(kind));
    SCOPED_TRACE(test::kMatrixKindNames[static_cast<std::size_t>(k)]);
    if (kind == MatrixKind::Down) {
      EXPECT_EQ(e, 0.0) << "down_proj's rows (172) are not a multiple of 32";
      continue;
    }
    EXPECT_GT(e, 1e-3);
    EXPECT_LT(e, 0.6 * all);
    sum_sq += e * e;
  }
  EXPECT_NEAR(std::sqrt(sum_sq) / all, 1.0, 0.15);
}

}  // namespace
}  // namespace kwaai::engine::llama
