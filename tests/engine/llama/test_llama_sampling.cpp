// Sampling: greedy, temperature, top-k, top-p, repetition penalty and seeded determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "engine/llama/sampling.hpp"

namespace kwaai::engine::llama {
namespace {

std::vector<float> random_logits(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(Sampling, GreedyTakesTheArgmaxWithTiesToTheLowestId) {
  EXPECT_EQ(argmax(std::vector<float>{1, 5, 5, 2}), 1);
  Sampler s({});
  EXPECT_EQ(s.sample(std::vector<float>{0.5f, -1, 3, 3}, {}), 2);
}

TEST(Sampling, SameSeedSameIdsDifferentSeedDifferentIds) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const auto logits = random_logits(512, seed);
  SamplingOptions o;
  o.temperature = 1.5f;
  o.seed = seed;
  Sampler a(o), b(o);
  o.seed = seed + 1;
  Sampler c(o);
  std::vector<std::int32_t> ia, ib, ic;
  for (int i = 0; i < 64; ++i) {
    ia.push_back(a.sample(logits, {}));
    ib.push_back(b.sample(logits, {}));
    ic.push_back(c.sample(logits, {}));
  }
  EXPECT_EQ(ia, ib);
  EXPECT_NE(ia, ic);
}

TEST(Sampling, TopKOneAndTinyTopPAreGreedy) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const auto logits = random_logits(300, seed);
  SamplingOptions k1;
  k1.temperature = 5.0f;
  k1.top_k = 1;
  k1.seed = seed;
  SamplingOptions p0 = k1;
  p0.top_k = 0;
  p0.top_p = 1e-6f;
  Sampler a(k1), b(p0);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(a.sample(logits, {}), argmax(logits));
    EXPECT_EQ(b.sample(logits, {}), argmax(logits));
  }
}

TEST(Sampling, TopKAndTopPOnlyEverPickFromTheirSets) {
  const std::vector<float> logits{4.0f, 3.9f, 3.8f, -10.0f, 0.0f};
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 3;
  o.seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(o.seed));
  Sampler s(o);
  std::map<std::int32_t, int> seen;
  for (int i = 0; i < 600; ++i) ++seen[s.sample(logits, {})];
  EXPECT_EQ(seen.size(), 3u);
  for (auto [id, n] : seen) EXPECT_LT(id, 3);
  // top_p = 0.5 of {0.5, 0.3, 0.2}: the nucleus is {0} alone... and 0.6 keeps {0, 1}.
  const std::vector<float> l2{std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  o.top_k = 0;
  o.top_p = 0.6f;
  Sampler t(o);
  std::map<std::int32_t, int> seen2;
  for (int i = 0; i < 600; ++i) ++seen2[t.sample(l2, {})];
  EXPECT_EQ(seen2.count(2), 0u);
  EXPECT_GT(seen2[1], 100);  // about 3/8 of 600
}

TEST(Sampling, TemperatureDrawsFollowTheSoftmax) {
  SamplingOptions o;
  o.temperature = 2.0f;
  o.seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(o.seed));
  Sampler s(o);
  const std::vector<float> logits{0.0f, 2.0f, 4.0f};  // /2 -> p ∝ {1, e, e^2}
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  std::vector<int> count(3);
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) ++count[static_cast<std::size_t>(s.sample(logits, {}))];
  for (int i = 0; i < 3; ++i) {
    const double p = std::exp(i * 1.0) / z;
    const double sd = std::sqrt(kN * p * (1 - p));
    EXPECT_NEAR(count[static_cast<std::size_t>(i)], kN * p, 6 * sd) << "id " << i;
  }
}

TEST(Sampling, RepetitionPenaltyDemotesSeenTokensOnce) {
  SamplingOptions o;
  o.repetition_penalty = 2.0f;
  Sampler s(o);
  // 6 / 2 = 3 < 4: the seen token loses; seeing it twice must not divide twice (3 > 2.5).
  EXPECT_EQ(s.sample(std::vector<float>{6.0f, 4.0f}, std::vector<std::int32_t>{0}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{6.0f, 2.5f}, std::vector<std::int32_t>{0, 0, 0}), 0);
  // Negative logits are multiplied: -1 * 2 = -2 < -1.5.
  EXPECT_EQ(s.sample(std::vector<float>{-1.0f, -1.5f}, std::vector<std::int32_t>{0}), 1);
}

TEST(Sampling, BadOptionsAreRejected) {
  SamplingOptions o;
  o.temperature = -1;
  EXPECT_THROW(Sampler{o}, std::invalid_argument);
  o = {};
  o.top_p = 0;
  EXPECT_THROW(Sampler{o}, std::invalid_argument);
  o = {};
  o.top_k = -2;
  EXPECT_THROW(Sampler{o}, std::invalid_argument);
  Sampler ok({});
  EXPECT_THROW(ok.sample({}, {}), std::invalid_argument);
}

}  // namespace
}  // namespace kwaai::engine::llama
