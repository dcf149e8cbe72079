// Sub-span requests and max_chunk_size_bytes in PetalsServer, over real loopback streams: a
// server holding [0, 5) that is asked for a consecutive run of its blocks (a Petals client's
// route may start a hop inside a server's span) must run exactly those blocks, for
// rpc_inference and rpc_forward, and charge the cache for those blocks only; a small
// max_chunk_size_bytes must split a step into several engine passes with the same result.
#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>

#include "cli/serve/chunking.hpp"
#include "cli/serve/petals_server.hpp"
#include "tests/serve/serve_test_util.hpp"

namespace kwaai::serve::test {
namespace {

using namespace std::chrono_literals;
using engine::llama::InferenceSession;
using engine::llama::SpanExecutor;

class ServeSubSpan : public ServerFixture {
 protected:
  // A reference session on an executor loaded for exactly [a, b), in this process.
  std::unique_ptr<InferenceSession> reference(std::int64_t a, std::int64_t b, std::int64_t batch,
                                              std::int64_t len) {
    return std::make_unique<InferenceSession>(
        exec(a, b), engine::llama::SessionOptions{batch, len, 0ms}, engine::llama::CacheLease{});
  }
};

struct Step {
  std::int64_t t, start;
  std::vector<std::int64_t> hypo;
};

// Runs `steps` (batch 2) on one rpc_inference stream for `uid` and compares every output with
// the reference session; `during` runs while the session is open.
asio::awaitable<void> run_session(lp::Libp2pNode& client, lp::Libp2pNode& server,
                                  const std::string& uid, const std::string& sid,
                                  std::int64_t max_length, const std::vector<Step>& steps,
                                  InferenceSession& ref, std::uint64_t seed,
                                  std::function<void()> during = {}) {
  auto s = co_await InferenceStream::open(*client.host, server.host->id());
  SERVE_CHECK(s != nullptr, "");
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& st = steps[i];
    const auto in = random_hidden(2 * st.t, seed + i);
    auto m = meta(sid, static_cast<int>(i),
                  i == 0 ? std::optional<std::int64_t>(max_length) : std::nullopt, st.start);
    std::string err;
    auto out = co_await s->step(step_request(uid, 2, in, m, st.hypo), &err);
    SERVE_CHECK(out.has_value(), uid << " step " << i << ": " << err);
    const auto want = ref.step(in, st.t, st.hypo, st.start);
    EXPECT_LT(max_abs_diff(*out, want), 1e-5f) << uid << " step " << i;
    if (i == 0 && during) during();
  }
  EXPECT_TRUE(co_await s->close());
}

const std::vector<Step> kSteps{{4, 0, {}}, {1, 4, {}}, {2, 3, {1, 0}}, {1, 5, {0, 0}}};

TEST_F(ServeSubSpan, InferenceOnASubSpanRunsExactlyThoseBlocks) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  const auto full = srv->cache_tokens_available();
  EXPECT_EQ(full, 4096u * 5);
  struct Case {
    std::int64_t begin, end;
  };
  for (const Case c : {Case{3, 5}, Case{1, 3}, Case{2, 3}, Case{0, 5}}) {
    SCOPED_TRACE("chain [" + std::to_string(c.begin) + ", " + std::to_string(c.end) + ")");
    auto ref = reference(c.begin, c.end, 2, 16);
    const auto uid = petals::chain_uid(kPrefix, static_cast<std::uint32_t>(c.begin),
                                       static_cast<std::uint32_t>(c.end));
    std::uint64_t charged = 0;
    run_coro(ctx_, [&]() -> asio::awaitable<void> {
      SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
      co_await run_session(client, a, uid, "sub" + std::to_string(c.begin), 16, kSteps, *ref, seed_,
                           [&] { charged = full - srv->cache_tokens_available(); });
    });
    // Petals' units: batch × max_length per requested block.
    EXPECT_EQ(charged, static_cast<std::uint64_t>(2 * 16 * (c.end - c.begin)));
  }
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    asio::steady_timer t(ctx_);  // the last cache is returned on the worker, asynchronously
    for (int i = 0; i < 200 && srv->cache_tokens_available() != full; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  });
  EXPECT_EQ(srv->cache_tokens_available(), full);
  stop(srv);
}

TEST_F(ServeSubSpan, ForwardOnASubSpanEqualsTheEngineOnThoseBlocks) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  for (const auto& [begin, end] :
       std::vector<std::pair<std::uint32_t, std::uint32_t>>{{2, 4}, {4, 5}, {0, 3}}) {
    SCOPED_TRACE("chain [" + std::to_string(begin) + ", " + std::to_string(end) + ")");
    const auto in = random_hidden(2 * 3, seed_ + begin);
    auto cache = exec(begin, end).make_cache(2, 3);
    const auto want = exec(begin, end).forward(in, 2, 3, cache, 0);
    hm::pb::ExpertRequest req;
    req.set_uid(petals::chain_uid(kPrefix, begin, end));
    *req.add_tensors() = float_tensor({2, 3, kHidden}, in);
    *req.add_tensors() = float_tensor({0}, {});
    const auto m = petals::client_forward_metadata(std::nullopt, 2).encode();
    req.set_metadata(std::string(m.begin(), m.end()));
    run_coro(ctx_, [&]() -> asio::awaitable<void> {
      SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
      const std::string name = std::string(kHandlerPrefix) + "rpc_forward";
      auto ans = co_await net::call_unary(*client.host, a.host->id(), name, to_bytes(req));
      SERVE_CHECK(ans.ok(), "");
      SERVE_CHECK(!(ans->is_error), ans->error);
      hm::pb::ExpertResponse resp;
      SERVE_CHECK(resp.ParseFromArray(ans->response.data(), static_cast<int>(ans->response.size())),
                  "");
      SERVE_CHECK(resp.tensors_size() == 1, resp.tensors_size());
      EXPECT_LT(max_abs_diff(hm::deserialize_tensor(resp.tensors(0))->to_floats(), want), 1e-5f);

      auto streamed = co_await forward_via_stream(*client.host, a.host->id(), req, 256);
      SERVE_CHECK(streamed.has_value(), "");
      EXPECT_LT(max_abs_diff(*streamed, want), 1e-5f);
    });
  }
  EXPECT_EQ(srv->stats().forward_calls, 6u);
  stop(srv);
}

TEST_F(ServeSubSpan, ChainsWithGapsOrOutOfOrderGetAnErrorFrame) {
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  const auto full = srv->cache_tokens_available();
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    for (const std::string uid :
         {"stories260K-hf.1 stories260K-hf.3", "stories260K-hf.4 stories260K-hf.3"}) {
      auto s = co_await InferenceStream::open(*client.host, a.host->id());
      SERVE_CHECK(s != nullptr, "");
      std::string err;
      auto out =
          co_await s->step(step_request(uid, 1, random_hidden(1, 1), meta("g", 0, 8, 0)), &err);
      EXPECT_FALSE(out.has_value()) << uid;
      EXPECT_NE(err.find("not consecutive"), std::string::npos) << uid << ": " << err;
    }
  });
  EXPECT_EQ(srv->cache_tokens_available(), full);
  EXPECT_EQ(srv->stats().inference_steps, 0u);
  stop(srv);
}

TEST(ServeChunking, MaxChunkLengthFollowsPetalsFormula) {
  // Petals' defaults: 256 MiB, 8 heads, batch 1, bf16, 2048 tokens in all -> 8192 per pass.
  EXPECT_EQ(max_chunk_length(256ull << 20, 8, 1, 2, 0, 2048), 8192);
  // 8 heads × batch 2 × 4 bytes × (3 + 7) = 640 bytes per token.
  EXPECT_EQ(max_chunk_length(640 * 3, 8, 2, 4, 3, 7), 3);
  EXPECT_EQ(max_chunk_length(640 * 3 - 1, 8, 2, 4, 3, 7), 2);
  EXPECT_EQ(max_chunk_length(1, 8, 2, 4, 3, 7), 1);  // never below one token
  EXPECT_THROW(max_chunk_length(1, 8, 0, 4, 0, 7), std::invalid_argument);
  EXPECT_THROW(max_chunk_length(1, 8, 1, 4, 0, 0), std::invalid_argument);
}

TEST(ServeChunking, SliceAndPlaceTokensRoundTrip) {
  std::vector<float> x(2 * 5 * 3);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  std::vector<float> back(x.size(), -1.f);
  for (std::int64_t t0 = 0; t0 < 5; t0 += 2) {
    const std::int64_t t1 = std::min<std::int64_t>(5, t0 + 2);
    const auto part = slice_tokens(x, 2, 5, 3, t0, t1);
    ASSERT_EQ(part.size(), static_cast<std::size_t>(2 * (t1 - t0) * 3));
    EXPECT_EQ(part[0], x[static_cast<std::size_t>(t0 * 3)]);                      // row 0
    EXPECT_EQ(part[part.size() / 2], x[static_cast<std::size_t>((5 + t0) * 3)]);  // row 1
    place_tokens(part, back, 2, 5, 3, t0, t1);
  }
  EXPECT_EQ(back, x);
  EXPECT_THROW(slice_tokens(x, 2, 5, 3, 4, 6), std::invalid_argument);
  EXPECT_THROW(place_tokens(std::vector<float>(5), back, 2, 5, 3, 0, 1), std::invalid_argument);
}

TEST_F(ServeSubSpan, SmallMaxChunkSizeBytesSplitsStepsWithTheSameResult) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto c = config();
  // 8 heads × batch 2 × 4 bytes (float32) = 64 bytes per token of prefix + seq. The prefill
  // (prefix 0, 4 tokens) then runs in chunks of floor(600 / 256) = 2, the 2-token step after
  // the rollback to 3 in chunks of floor(600 / 320) = 1; single-token steps stay one pass.
  c.limits.max_chunk_size_bytes = 600;
  auto srv = serve(a, 0, 5, c);
  auto ref = reference(1, 4, 2, 16);
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    co_await run_session(client, a, petals::chain_uid(kPrefix, 1, 4), "chunked", 16, kSteps, *ref,
                         seed_);
  });
  const auto st = srv->stats();
  EXPECT_EQ(st.inference_steps, 4u);
  EXPECT_EQ(st.inference_chunks, 2u + 1u + 2u + 1u);
  stop(srv);
}

}  // namespace
}  // namespace kwaai::serve::test
