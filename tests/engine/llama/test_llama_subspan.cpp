// Sessions and forward passes over a consecutive sub-range [a, b) of a SpanExecutor's blocks
// (a Petals client's route may start a hop inside a server's span). On the CPU and on Vulkan
// (lavapipe here): a sub-range of a [0, 5) executor must equal an executor loaded for exactly
// that range, mixed ranges in one step_batch must equal separate steps, and bad ranges must be
// refused before anything is allocated or run.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/llama/session.hpp"
#include "engine/model/model_source.hpp"
#include "tests/engine/llama/llama_test_util.hpp"

namespace kwaai::engine::llama {
namespace {

using namespace std::chrono_literals;
using test::rel_l2;

constexpr std::int64_t kHidden = 64;
constexpr std::int64_t kMaxLength = 32;

std::vector<float> random_hidden(std::int64_t rows, std::mt19937_64& rng) {
  return test::random_hidden(rows, kHidden, rng);
}

SessionOptions range_opts(std::int64_t batch, std::int64_t begin, std::int64_t end) {
  SessionOptions o;
  o.batch = batch;
  o.max_length = kMaxLength;
  o.block_begin = begin;
  o.block_end = end;
  return o;
}

class SubSpan : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    be_ = test::backend_or_skip(GetParam(), why_);
    if (!be_) GTEST_SKIP() << "backend '" << GetParam() << "' unavailable: " << why_;
    src_ = open_model(test::stories_dir());
    full_ = std::make_unique<SpanExecutor>(*be_, *src_, 0, 5);
    seed_ = std::random_device{}();
  }
  std::unique_ptr<Backend> be_;
  std::string why_;
  std::unique_ptr<ModelSource> src_;
  std::unique_ptr<SpanExecutor> full_;
  std::uint64_t seed_ = 0;
};

TEST_P(SubSpan, SessionOverBlocks2To5EqualsAnExecutorLoadedFor2To5) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::mt19937_64 rng(seed_);
  SpanExecutor only(*be_, *src_, 2, 5);
  InferenceSession sub(*full_, range_opts(2, 2, 5), CacheLease{});
  InferenceSession ref(only, range_opts(2, -1, -1), CacheLease{});
  EXPECT_EQ(sub.block_range(), (BlockRange{2, 5}));
  // Prefill, two decode steps, then a rollback with a beam reorder.
  const std::vector<std::int64_t> tokens = {5, 1, 1, 2};
  for (std::size_t s = 0; s < tokens.size(); ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    const auto h = random_hidden(2 * tokens[s], rng);
    std::vector<std::int64_t> hypo;
    std::optional<std::int64_t> start;
    if (s == 3) {
      hypo = {1, 0};
      start = 4;
    }
    const auto a = sub.step(h, tokens[s], hypo, start);
    const auto b = ref.step(h, tokens[s], hypo, start);
    EXPECT_LT(rel_l2(a, b), 1e-6);
  }
  EXPECT_EQ(sub.position(), ref.position());
}

TEST_P(SubSpan, ForwardOverASubRangeEqualsChainingItsBlocks) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::mt19937_64 rng(seed_);
  const auto h = random_hidden(3 * 4, rng);
  // [0, 5) in one pass equals [0, 2) then [2, 5): each sub-range runs exactly its blocks.
  auto whole_cache = full_->make_cache(3, 4);
  const auto whole = full_->forward(h, 3, 4, whole_cache, 0);
  auto c1 = full_->make_cache(3, 4, 0, 2);
  auto c2 = full_->make_cache(3, 4, 2, 5);
  EXPECT_EQ(c1.n_blocks(), 2);
  EXPECT_EQ(c2.n_blocks(), 3);
  const auto mid = full_->forward(h, 3, 4, c1, 0, 0, 2);
  const auto chained = full_->forward(mid, 3, 4, c2, 0, 2, 5);
  EXPECT_LT(rel_l2(chained, whole), 1e-6);
  EXPECT_GT(rel_l2(mid, whole), 1e-3) << "[0, 2) alone must differ from the whole span";
}

TEST_P(SubSpan, MixedSubRangesInOneStepBatchEqualSeparateSteps) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::mt19937_64 rng(seed_);
  const std::vector<std::pair<std::int64_t, std::int64_t>> ranges = {
      {2, 5}, {-1, -1}, {0, 3}, {2, 5}, {4, 5}};
  std::vector<std::unique_ptr<InferenceSession>> batched, alone;
  for (const auto& [a, b] : ranges) {
    batched.push_back(
        std::make_unique<InferenceSession>(*full_, range_opts(1, a, b), CacheLease{}));
    alone.push_back(std::make_unique<InferenceSession>(*full_, range_opts(1, a, b), CacheLease{}));
  }
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<std::vector<float>> inputs;
    std::vector<std::int64_t> tokens;
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      tokens.push_back(round == 0 ? static_cast<std::int64_t>(2 + i) : (i == 1 ? 0 : 1));
      inputs.push_back(random_hidden(tokens.back(), rng));
    }
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < ranges.size(); ++i)
      reqs.push_back({batched[i].get(), inputs[i], tokens[i], {}, std::nullopt});
    const auto outs = step_batch(reqs);
    ASSERT_EQ(outs.size(), ranges.size());
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      SCOPED_TRACE("request " + std::to_string(i));
      const auto ref = alone[i]->step(inputs[i], tokens[i]);
      ASSERT_EQ(outs[i].size(), ref.size());
      if (!ref.empty()) {
        EXPECT_LT(rel_l2(outs[i], ref), 1e-6);
      }
      EXPECT_EQ(batched[i]->position(), alone[i]->position());
    }
  }
}

TEST_P(SubSpan, InvalidRangesAreRefusedWithTheRangeInTheMessage) {
  auto expect_refused = [&](std::int64_t a, std::int64_t b) {
    SCOPED_TRACE("range [" + std::to_string(a) + ", " + std::to_string(b) + ")");
    try {
      InferenceSession s(*full_, range_opts(1, a, b), CacheLease{});
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("not inside the span [0, 5)"), std::string::npos)
          << e.what();
    }
  };
  expect_refused(3, 3);   // empty
  expect_refused(4, 2);   // reversed
  expect_refused(-1, 3);  // half default
  expect_refused(2, 6);   // past the span
  SpanExecutor mid(*be_, *src_, 1, 4);
  EXPECT_THROW(mid.make_cache(1, 4, 0, 2), std::invalid_argument);
  EXPECT_THROW(mid.resolve_range(3, 5), std::invalid_argument);

  // A cache of the wrong block count for the requested range.
  auto c = full_->make_cache(1, 4, 1, 3);
  std::vector<float> h(4 * kHidden, 0.5f);
  EXPECT_THROW(full_->forward(h, 1, 4, c, 0, 1, 4), std::invalid_argument);
  EXPECT_THROW(full_->forward(h, 1, 4, c, 0), std::invalid_argument);

  // One record_batch pass takes one range; mixing is refused before anything runs.
  auto c2 = full_->make_cache(1, 4, 1, 4);
  std::vector<SpanSegment> segs = {{&c, 1, 4, 0, 1, 3}, {&c2, 1, 4, 0, 1, 4}};
  std::vector<std::span<const float>> in = {h, h};
  try {
    full_->forward_batch(in, segs);
    ADD_FAILURE() << "mixed ranges accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("segment 1"), std::string::npos) << e.what();
  }

  // The manager refuses a bad range before taking any budget.
  CacheBudget budget(1000);
  SessionManager mgr(*full_, budget, kMaxLength, 600s);
  EXPECT_THROW(mgr.open("x", range_opts(1, 0, 7)), std::invalid_argument);
  EXPECT_EQ(budget.available(), 1000);
  EXPECT_EQ(mgr.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Devices, SubSpan, ::testing::Values("cpu", "vulkan"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kwaai::engine::llama
