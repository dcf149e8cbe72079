// The compute worker on its own: steps queued while the device is busy go out as one
// step_batch submission with the same results as one-by-one steps; a full queue refuses work
// with ServerBusy instead of growing.
#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <future>

#include "cli/serve/compute_worker.hpp"
#include "tests/serve/serve_test_util.hpp"

namespace kwaai::serve::test {
namespace {

std::string describe_exception(std::exception_ptr e) {
  if (!e) return "";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
  return "?";
}

using namespace std::chrono_literals;
using engine::llama::CacheBudget;
using engine::llama::InferenceSession;
using engine::llama::SpanExecutor;

TEST(ComputeWorker, StepsQueuedWhileBusyRunAsOneBatchWithUnchangedResults) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto be = engine::make_backend("cpu");
  auto src = engine::open_model(stories_dir());
  SpanExecutor exec(*be, *src, 0, 5);
  CacheBudget budget(1 << 16);
  constexpr int kSessions = 3;
  std::vector<std::shared_ptr<InferenceSession>> served, ref;
  for (int i = 0; i < kSessions; ++i) {
    served.push_back(std::make_shared<InferenceSession>(
        exec, engine::llama::SessionOptions{1, 16, 0ms}, budget.acquire(16, 0ms)));
    ref.push_back(std::make_shared<InferenceSession>(
        exec, engine::llama::SessionOptions{1, 16, 0ms}, budget.acquire(16, 0ms)));
  }
  ComputeWorker worker(16);
  // Hold the worker until every step is queued.
  std::promise<void> release;
  auto gate = release.get_future().share();
  ASSERT_TRUE(worker.submit([gate] { gate.wait(); }));
  asio::io_context ctx;
  std::vector<std::vector<float>> inputs, outputs(kSessions);
  int done = 0;
  for (int i = 0; i < kSessions; ++i) {
    inputs.push_back(random_hidden(i + 1, seed + static_cast<std::uint64_t>(i)));
    StepTask task;
    task.session = served[i];
    task.hidden = inputs[i];
    task.tokens = i + 1;
    asio::co_spawn(ctx, step_on_worker(worker, std::move(task)),
                   [&, i](std::exception_ptr e, StepOutcome o) {
                     EXPECT_FALSE(e) << describe_exception(e);
                     outputs[i] = std::move(o.output);
                     ++done;
                   });
  }
  // Let every co_spawn submit its step before opening the gate.
  for (int i = 0; i < 20; ++i) ctx.poll();
  release.set_value();
  while (done < kSessions) ctx.run_one_for(100ms);
  EXPECT_EQ(worker.batched_submissions(), 1u);
  for (int i = 0; i < kSessions; ++i)
    EXPECT_LT(max_abs_diff(outputs[i], ref[i]->step(inputs[i], i + 1)), 1e-5f) << "session " << i;
  worker.stop();
}

TEST(ComputeWorker, AFullQueueRefusesWithServerBusy) {
  ComputeWorker worker(2);
  std::promise<void> release;
  auto gate = release.get_future().share();
  ASSERT_TRUE(worker.submit([gate] { gate.wait(); }));
  // The blocking job has been taken off the queue or not: either way at most two more fit.
  int accepted = 0;
  for (int i = 0; i < 5; ++i) accepted += worker.submit([] {}) ? 1 : 0;
  EXPECT_LE(accepted, 2);
  EXPECT_GE(accepted, 1);
  // Control jobs (cache release) are never refused while running.
  EXPECT_TRUE(worker.submit([] {}, /*control=*/true));
  asio::io_context ctx;
  bool busy = false;
  asio::co_spawn(ctx, on_worker<int>(worker, [] { return 1; }), [&](std::exception_ptr e, int) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const ServerBusy&) {
      busy = true;
    }
  });
  ctx.run();
  EXPECT_TRUE(busy);
  release.set_value();
  worker.stop();
  EXPECT_FALSE(worker.submit([] {}));  // stopped
}

}  // namespace
}  // namespace kwaai::serve::test
