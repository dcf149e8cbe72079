// Inference sessions over a stories260K span: rollback, beam reordering, the cache budget,
// idle expiry and concurrent sessions on one device.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "engine/llama/session.hpp"
#include "engine/model/model_source.hpp"
#include "tests/engine/llama/llama_test_util.hpp"

namespace kwaai::engine::llama {
namespace {

using namespace std::chrono_literals;
using test::rel_l2;

constexpr std::int64_t kHidden = 64;

std::vector<float> random_hidden(std::int64_t rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(rows * kHidden));
  for (auto& x : v) x = n(rng);
  return v;
}

std::vector<float> rows(const std::vector<float>& v, std::int64_t begin, std::int64_t end) {
  return {v.begin() + begin * kHidden, v.begin() + end * kHidden};
}

class Sessions : public ::testing::Test {
 protected:
  void SetUp() override {
    be_ = make_backend("cpu");
    src_ = open_model(test::stories_dir());
    exec_ = std::make_unique<SpanExecutor>(*be_, *src_, 1, 4);
    seed_ = std::random_device{}();
  }
  std::unique_ptr<Backend> be_;
  std::unique_ptr<ModelSource> src_;
  std::unique_ptr<SpanExecutor> exec_;
  std::uint64_t seed_ = 0;
};

TEST_F(Sessions, RollbackToAnEarlierPositionRecomputesTheSameOutputs) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  CacheBudget budget(1000);
  SessionManager mgr(*exec_, budget, 128, 60s);
  auto s = mgr.open("a", {1, 32, 0ms});
  const auto in = random_hidden(12, seed_);
  const auto full = s->step(in, 12);
  EXPECT_EQ(s->position(), 12);
  // Overwrite positions 8.. with other tokens, then roll back to 8 and replay the originals.
  s->step(random_hidden(3, seed_ + 1), 3, {}, 8);
  EXPECT_EQ(s->position(), 11);
  const auto replay = s->step(rows(in, 8, 12), 4, {}, 8);
  EXPECT_EQ(s->position(), 12);
  EXPECT_LT(rel_l2(replay, rows(full, 8, 12)), 1e-6);
  EXPECT_THROW(s->step(in, 1, {}, 13), std::invalid_argument);  // beyond the position
}

TEST_F(Sessions, HypoIdsGatherTheCacheAlongTheBatch) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  CacheBudget budget(1000);
  SessionManager mgr(*exec_, budget, 128, 60s);
  const auto a = random_hidden(5, seed_), b = random_hidden(5, seed_ + 1);
  const auto next = random_hidden(1, seed_ + 2);
  // Expected: sequence b alone, then the next token.
  auto single = mgr.open("single", {1, 16, 0ms});
  single->step(b, 5);
  const auto want = single->step(next, 1);
  // Batch [a, b]; reorder to [b, b] and feed the same token to both rows.
  auto beam = mgr.open("beam", {2, 16, 0ms});
  std::vector<float> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  beam->step(ab, 5);
  std::vector<float> both = next;
  both.insert(both.end(), next.begin(), next.end());
  const std::vector<std::int64_t> hypo{1, 1};
  const auto got = beam->step(both, 1, hypo);
  EXPECT_LT(rel_l2(rows(got, 0, 1), want), 1e-6);
  EXPECT_LT(rel_l2(rows(got, 1, 2), want), 1e-6);
  const std::vector<std::int64_t> bad{0, 2};
  EXPECT_THROW(beam->step(both, 1, bad), std::invalid_argument);
}

TEST_F(Sessions, BudgetRefusesWhatDoesNotFitAndAdmitsAfterAClose) {
  CacheBudget budget(100);
  SessionManager mgr(*exec_, budget, 128, 60s);
  auto s1 = mgr.open("one", {1, 64, 0ms});
  EXPECT_EQ(budget.available(), 36);
  EXPECT_THROW(mgr.open("two", {1, 64, 0ms}), CacheAllocationFailed);
  EXPECT_THROW(mgr.open("huge", {2, 128, 1000ms}), CacheAllocationFailed);  // > capacity
  EXPECT_THROW(mgr.open("one", {1, 8, 0ms}), std::invalid_argument);        // duplicate id
  EXPECT_THROW(mgr.open("long", {1, 129, 0ms}), std::invalid_argument);     // > max_length
  // A waiting open succeeds once the first session is closed and released.
  auto waiter = std::async(std::launch::async, [&] { return mgr.open("two", {1, 64, 5000ms}); });
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(mgr.close("one"));
  s1.reset();
  auto s2 = waiter.get();
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(budget.available(), 36);
  EXPECT_THROW(s2->step(random_hidden(65, seed_), 65), std::length_error);
  s2.reset();
  mgr.close("two");
  EXPECT_EQ(budget.available(), 100);
}

TEST_F(Sessions, IdleSessionsExpireAndFreeTheirCache) {
  auto now = std::chrono::steady_clock::time_point{};
  CacheBudget budget(100);
  SessionManager mgr(*exec_, budget, 128, 10s, [&] { return now; });
  mgr.open("idle", {1, 40, 0ms});
  mgr.open("busy", {1, 40, 0ms});
  now += 6s;
  ASSERT_NE(mgr.find("busy"), nullptr);
  now += 6s;
  EXPECT_EQ(mgr.close_idle(), 1u);
  EXPECT_EQ(mgr.find("idle"), nullptr);
  EXPECT_NE(mgr.find("busy"), nullptr);
  EXPECT_EQ(budget.available(), 60);
}

TEST_F(Sessions, ConcurrentSessionsOnOneDeviceMatchSequentialRuns) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  constexpr int kThreads = 4, kSteps = 6;
  std::vector<std::vector<float>> inputs, want;
  CacheBudget budget(kThreads * 32);
  SessionManager mgr(*exec_, budget, 32, 60s);
  for (int i = 0; i < kThreads; ++i) {
    inputs.push_back(random_hidden(8 + kSteps, seed_ + i));
    auto s = mgr.open("seq" + std::to_string(i), {1, 32, 0ms});
    std::vector<float> out = s->step(rows(inputs[i], 0, 8), 8);
    for (int k = 0; k < kSteps; ++k) {
      auto o = s->step(rows(inputs[i], 8 + k, 9 + k), 1);
      out.insert(out.end(), o.begin(), o.end());
    }
    want.push_back(out);
    mgr.close("seq" + std::to_string(i));
  }
  std::vector<std::future<std::vector<float>>> runs;
  for (int i = 0; i < kThreads; ++i) {
    runs.push_back(std::async(std::launch::async, [&, i] {
      auto s = mgr.open("par" + std::to_string(i), {1, 32, 2000ms});
      std::vector<float> out = s->step(rows(inputs[i], 0, 8), 8);
      for (int k = 0; k < kSteps; ++k) {
        auto o = s->step(rows(inputs[i], 8 + k, 9 + k), 1);
        out.insert(out.end(), o.begin(), o.end());
      }
      return out;
    }));
  }
  for (int i = 0; i < kThreads; ++i) EXPECT_LT(rel_l2(runs[i].get(), want[i]), 1e-6) << i;
}

TEST_F(Sessions, ZeroTokenStepsAndBadShapesAreHandled) {
  CacheBudget budget(100);
  SessionManager mgr(*exec_, budget, 64, 60s);
  auto s = mgr.open("z", {2, 16, 0ms});
  EXPECT_TRUE(s->step({}, 0).empty());
  EXPECT_EQ(s->position(), 0);
  EXPECT_THROW(s->step(random_hidden(3, seed_), 3), std::invalid_argument);  // odd rows for B=2
  EXPECT_THROW(mgr.open("b0", {0, 16, 0ms}), std::invalid_argument);
}

}  // namespace
}  // namespace kwaai::engine::llama
