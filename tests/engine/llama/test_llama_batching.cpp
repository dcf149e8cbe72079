// step_batch over stories260K sessions, on the CPU and on Vulkan (lavapipe here): every batched
// output must equal what InferenceSession::step gives for the same request, the caches must be
// left as per-session steps leave them, a bad request must leave every session untouched, and
// concurrent callers must not disturb each other.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <numeric>
#include <optional>
#include <random>
#include <string>
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
constexpr std::int64_t kMaxLength = 48;

std::vector<float> random_hidden(std::int64_t rows, std::mt19937_64& rng) {
  return test::random_hidden(rows, kHidden, rng);
}

// One session's part of a round; turned into a StepRequest for the batched twin and into a
// step() call for the reference twin.
struct Plan {
  std::vector<float> hidden;
  std::int64_t tokens = 0;
  std::vector<std::int64_t> hypo_ids;
  std::optional<std::int64_t> start;
};

class Batching : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    be_ = test::backend_or_skip(GetParam(), why_);
    if (!be_) GTEST_SKIP() << "backend '" << GetParam() << "' unavailable: " << why_;
    src_ = open_model(test::stories_dir());
    exec_ = std::make_unique<SpanExecutor>(*be_, *src_, 1, 4);
    seed_ = std::random_device{}();
    budget_ = std::make_unique<CacheBudget>(1 << 20);
    mgr_ = std::make_unique<SessionManager>(*exec_, *budget_, kMaxLength, 600s);
  }

 public:
  std::shared_ptr<InferenceSession> open(std::int64_t batch) {
    return mgr_->open("s" + std::to_string(next_id_++), {batch, kMaxLength, 0ms});
  }
  double tol() const { return test::tolerance(*be_); }

 protected:
  std::string why_;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<ModelSource> src_;
  std::unique_ptr<SpanExecutor> exec_;
  std::unique_ptr<CacheBudget> budget_;
  std::unique_ptr<SessionManager> mgr_;
  std::uint64_t seed_ = 0;
  int next_id_ = 0;
};

// Random rounds over `batches.size()` session pairs: each round mixes prefills, single-token
// decodes, zero-token steps, rollbacks and beam reorders. The batched twins go through
// step_batch, the reference twins through step, and every output is compared; at the end each
// pair takes one more decode step separately, which compares the caches.
void run_rounds(Batching& t, const std::vector<std::int64_t>& batches, int rounds,
                std::uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(batches.size()) +
               " sessions");
  std::mt19937_64 rng(seed);
  std::vector<std::shared_ptr<InferenceSession>> ref, bat;
  for (std::int64_t b : batches) {
    ref.push_back(t.open(b));
    bat.push_back(t.open(b));
  }
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<Plan> plans(batches.size());
    for (std::size_t i = 0; i < batches.size(); ++i) {
      Plan& p = plans[i];
      const std::int64_t b = batches[i], pos = ref[i]->position();
      const int kind = round == 0 ? 0 : static_cast<int>(rng() % 5);
      if (kind == 3 && pos > 0) p.start = static_cast<std::int64_t>(rng() % (pos + 1));
      const std::int64_t at = p.start.value_or(pos);
      if (kind == 0 || kind == 3) {
        p.tokens = 1 + static_cast<std::int64_t>(rng() % 6);  // prefill (or replay) of 1..6
      } else if (kind == 4) {
        p.tokens = 0;
      } else {
        p.tokens = 1;
      }
      p.tokens = std::min(p.tokens, kMaxLength - at);
      if (kind == 2 || (kind == 1 && rng() % 2)) {
        for (std::int64_t k = 0; k < b; ++k)
          p.hypo_ids.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(b)));
      }
      p.hidden = random_hidden(b * p.tokens, rng);
    }
    std::vector<StepRequest> reqs;
    for (std::size_t i = 0; i < plans.size(); ++i)
      reqs.push_back(
          {bat[i].get(), plans[i].hidden, plans[i].tokens, plans[i].hypo_ids, plans[i].start});
    const auto got = step_batch(reqs);
    ASSERT_EQ(got.size(), plans.size());
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const Plan& p = plans[i];
      const auto want = ref[i]->step(p.hidden, p.tokens, p.hypo_ids, p.start);
      ASSERT_EQ(got[i].size(), want.size()) << "request " << i;
      if (!want.empty()) {
        EXPECT_LT(rel_l2(got[i], want), t.tol()) << "request " << i;
      }
      EXPECT_EQ(bat[i]->position(), ref[i]->position()) << "request " << i;
    }
  }
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const auto next = random_hidden(batches[i], rng);
    const auto want = ref[i]->step(next, 1);
    const auto got = bat[i]->step(next, 1);
    EXPECT_LT(rel_l2(got, want), t.tol()) << "continuation of session " << i;
  }
}

TEST_P(Batching, OneSessionMatchesItsOwnSteps) {
  run_rounds(*this, {2}, 5, seed_);
}

TEST_P(Batching, TwoSessionsWithDifferentBatchesMatchTheirOwnSteps) {
  run_rounds(*this, {1, 3}, 6, seed_);
}

TEST_P(Batching, FiveSessionsMixingPrefillDecodeRollbackAndBeamsMatchTheirOwnSteps) {
  run_rounds(*this, {1, 2, 1, 4, 3}, 6, seed_);
}

TEST_P(Batching, EmptyBatchAndAllZeroTokenStepsRunNothing) {
  EXPECT_TRUE(step_batch({}).empty());
  auto a = open(1), b = open(2);
  std::vector<StepRequest> reqs{{a.get(), {}, 0, {}, std::nullopt},
                                {b.get(), {}, 0, {}, std::nullopt}};
  const auto out = step_batch(reqs);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].empty());
  EXPECT_TRUE(out[1].empty());
  EXPECT_EQ(a->position(), 0);
  EXPECT_EQ(b->position(), 0);
}

// A batch whose last request is bad must not run the good ones either: positions stay, and no
// reorder of an earlier request reaches its cache (the next steps still match twins that never
// saw the refused batch).
TEST_P(Batching, ARefusedBatchLeavesEverySessionUnchanged) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::mt19937_64 rng(seed_);
  const std::vector<std::int64_t> batches{2, 1, 3};
  std::vector<std::shared_ptr<InferenceSession>> ref, bat;
  for (std::int64_t b : batches) {
    ref.push_back(open(b));
    bat.push_back(open(b));
    const auto in = random_hidden(b * 4, rng);
    ref.back()->step(in, 4);
    bat.back()->step(in, 4);
  }
  const auto h0 = random_hidden(2, rng), h1 = random_hidden(1, rng), h2 = random_hidden(3, rng);
  const std::vector<std::int64_t> swap{1, 0}, bad_hypo{0, 1, 3}, short_hypo{0, 1};
  struct Bad {
    std::string what;
    StepRequest last;
    bool length = false;
  };
  const std::vector<Bad> cases{
      {"wrong hidden size", {bat[2].get(), h1, 1, {}, std::nullopt}},
      {"negative tokens", {bat[2].get(), {}, -1, {}, std::nullopt}},
      {"hypo index out of range", {bat[2].get(), h2, 1, bad_hypo, std::nullopt}},
      {"hypo count", {bat[2].get(), h2, 1, short_hypo, std::nullopt}},
      {"start beyond position", {bat[2].get(), h2, 1, {}, 5}},
      {"negative start", {bat[2].get(), h2, 1, {}, -1}},
      {"max_length", {bat[2].get(), random_hidden(3 * kMaxLength, rng), kMaxLength, {}, 2}, true},
      {"null session", {nullptr, h2, 1, {}, std::nullopt}},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<StepRequest> reqs{
        {bat[0].get(), h0, 1, swap, std::nullopt}, {bat[1].get(), h1, 1, {}, 1}, c.last};
    try {
      step_batch(reqs);
      ADD_FAILURE() << "accepted";
    } catch (const std::length_error& e) {
      EXPECT_TRUE(c.length) << e.what();
      EXPECT_NE(std::string(e.what()).find("request 2"), std::string::npos) << e.what();
    } catch (const std::invalid_argument& e) {
      EXPECT_FALSE(c.length) << e.what();
      EXPECT_NE(std::string(e.what()).find("request 2"), std::string::npos) << e.what();
    }
    for (std::size_t i = 0; i < bat.size(); ++i) EXPECT_EQ(bat[i]->position(), 4) << i;
  }
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const auto next = random_hidden(batches[i], rng);
    EXPECT_LT(rel_l2(bat[i]->step(next, 1), ref[i]->step(next, 1)), tol()) << i;
  }
}

TEST_P(Batching, DuplicateSessionsAndSessionsOfAnotherSpanAreRefused) {
  auto a = open(1), b = open(1);
  SpanExecutor other(*be_, *src_, 0, 2);
  CacheBudget budget(1000);
  SessionManager mgr(other, budget, kMaxLength, 60s);
  auto foreign = mgr.open("foreign", {1, kMaxLength, 0ms});
  std::mt19937_64 rng(seed_);
  const auto h = random_hidden(1, rng);
  const std::vector<StepRequest> dup{{a.get(), h, 1, {}, std::nullopt},
                                     {b.get(), h, 1, {}, std::nullopt},
                                     {a.get(), h, 1, {}, std::nullopt}};
  try {
    step_batch(dup);
    ADD_FAILURE() << "duplicate accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("request 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("request 0"), std::string::npos) << e.what();
  }
  const std::vector<StepRequest> mixed{{a.get(), h, 1, {}, std::nullopt},
                                       {foreign.get(), h, 1, {}, std::nullopt}};
  try {
    step_batch(mixed);
    ADD_FAILURE() << "session of another executor accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("request 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(a->position(), 0);
  EXPECT_EQ(b->position(), 0);
  EXPECT_EQ(foreign->position(), 0);
}

// Threads batching disjoint pairs get exactly their sequential results; two threads batching
// the same two sessions in opposite request order neither deadlock nor lose a step.
TEST_P(Batching, ConcurrentBatchesDoNotDisturbEachOther) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  constexpr int kThreads = 3, kSteps = 4;
  std::mt19937_64 rng(seed_);
  struct Work {
    std::vector<float> prefill_a, prefill_b;
    std::vector<std::vector<float>> dec_a, dec_b;
    std::vector<float> want;
  };
  std::vector<Work> work(kThreads);
  auto run = [&](Work& w, InferenceSession& a, InferenceSession& b, bool batched) {
    std::vector<float> out;
    auto append = [&](const std::vector<float>& v) { out.insert(out.end(), v.begin(), v.end()); };
    if (batched) {
      const std::vector<StepRequest> r{{&a, w.prefill_a, 5, {}, std::nullopt},
                                       {&b, w.prefill_b, 3, {}, std::nullopt}};
      for (const auto& o : step_batch(r)) append(o);
    } else {
      append(a.step(w.prefill_a, 5));
      append(b.step(w.prefill_b, 3));
    }
    for (int k = 0; k < kSteps; ++k) {
      if (batched) {
        const std::vector<StepRequest> r{{&a, w.dec_a[k], 1, {}, std::nullopt},
                                         {&b, w.dec_b[k], 1, {}, std::nullopt}};
        for (const auto& o : step_batch(r)) append(o);
      } else {
        append(a.step(w.dec_a[k], 1));
        append(b.step(w.dec_b[k], 1));
      }
    }
    return out;
  };
  for (Work& w : work) {
    w.prefill_a = random_hidden(5, rng);
    w.prefill_b = random_hidden(2 * 3, rng);
    for (int k = 0; k < kSteps; ++k) {
      w.dec_a.push_back(random_hidden(1, rng));
      w.dec_b.push_back(random_hidden(2, rng));
    }
    auto a = open(1), b = open(2);
    w.want = run(w, *a, *b, false);
  }
  std::vector<std::future<std::vector<float>>> runs;
  for (Work& w : work)
    runs.push_back(std::async(std::launch::async,
                              [&, a = open(1), b = open(2)] { return run(w, *a, *b, true); }));
  for (int i = 0; i < kThreads; ++i) EXPECT_LT(rel_l2(runs[i].get(), work[i].want), tol()) << i;

  auto x = open(1), y = open(1);
  const auto h = random_hidden(1, rng);
  auto hammer = [&](bool reversed) {
    for (int k = 0; k < 8; ++k) {
      std::vector<StepRequest> r{{x.get(), h, 1, {}, std::nullopt},
                                 {y.get(), h, 1, {}, std::nullopt}};
      if (reversed) std::swap(r[0], r[1]);
      step_batch(r);
    }
  };
  auto f1 = std::async(std::launch::async, hammer, false);
  auto f2 = std::async(std::launch::async, hammer, true);
  f1.get();
  f2.get();
  EXPECT_EQ(x->position(), 16);
  EXPECT_EQ(y->position(), 16);
}

// The point of batching: per block, each of the 7 projections runs once over every session's
// rows (M = sum of batch * tokens), while cache writes and attention run once per session.
TEST_P(Batching, EveryBlockRunsEachProjectionOnceForTheWholeGroup) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::mt19937_64 rng(seed_);
  const std::vector<std::int64_t> batches{1, 3, 2}, tokens{1, 2, 4};
  std::vector<std::shared_ptr<InferenceSession>> ss;
  std::vector<std::vector<float>> in;
  std::vector<StepRequest> reqs;
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    ss.push_back(open(batches[i]));
    in.push_back(random_hidden(batches[i] * tokens[i], rng));
    rows += batches[i] * tokens[i];
  }
  for (std::size_t i = 0; i < batches.size(); ++i)
    reqs.push_back({ss[i].get(), in[i], tokens[i], {}, std::nullopt});
  be_->set_profiling(true);
  be_->take_profile();
  step_batch(reqs);
  const auto prof = be_->take_profile();
  be_->set_profiling(false);
  if (prof.empty() && be_->kind() != BackendKind::Cpu)
    GTEST_SKIP() << "this device reports no op timings";
  int matmuls = 0, attentions = 0, kv_writes = 0;
  for (const OpTiming& t : prof) {
    if (t.op.rfind("matmul", 0) == 0) {
      matmuls += test::products_of(t.op);
      const auto open_bracket = t.op.find('[');
      ASSERT_NE(open_bracket, std::string::npos) << t.op;
      EXPECT_EQ(std::stoll(t.op.substr(open_bracket + 1)), rows) << t.op;
    }
    attentions += t.op.rfind("attention", 0) == 0;
    // Each segment writes its k and v rows once: two kv_writes, or one fused rope_kv_write.
    kv_writes += t.op.rfind("kv_write", 0) == 0 ? 1 : t.op.rfind("rope_kv_write", 0) == 0 ? 2 : 0;
  }
  const int blocks = static_cast<int>(exec_->n_blocks());
  EXPECT_EQ(matmuls, 7 * blocks);
  EXPECT_EQ(attentions, 3 * blocks);
  EXPECT_EQ(kv_writes, 2 * 3 * blocks);
}

// The executor-level entry refuses what step_batch never builds but another caller could.
TEST_P(Batching, ExecutorRefusesASharedCacheAndMismatchedInputs) {
  std::mt19937_64 rng(seed_);
  KvCache a = exec_->make_cache(1, 8), b = exec_->make_cache(1, 8);
  const auto h = random_hidden(1, rng);
  const std::vector<std::span<const float>> two{h, h};
  const std::vector<SpanSegment> shared{{&a, 1, 1, 0}, {&a, 1, 1, 0}};
  EXPECT_THROW(exec_->forward_batch(two, shared), std::invalid_argument);
  const std::vector<SpanSegment> ok{{&a, 1, 1, 0}, {&b, 1, 1, 0}};
  const std::vector<std::span<const float>> one{h};
  EXPECT_THROW(exec_->forward_batch(one, ok), std::invalid_argument);
  const std::vector<SpanSegment> too_far{{&a, 1, 1, 0}, {&b, 1, 1, 8}};
  EXPECT_THROW(exec_->forward_batch(two, too_far), std::length_error);
  EXPECT_THROW(exec_->forward_batch({}, {}), std::invalid_argument);
  EXPECT_EQ(exec_->forward_batch(two, ok).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Devices, Batching, ::testing::Values("cpu", "vulkan"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kwaai::engine::llama
