// PetalsServer over real loopback libp2p streams: rpc_info, rpc_inference through two servers
// against the single-process engine, rollback and beam reordering, forward (unary and stream),
// push chaining, backward refusals, rejections, a vanishing client, concurrent sessions.
#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cli/serve/petals_server.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "tests/serve/serve_test_util.hpp"

namespace kwaai::serve::test {
namespace {

using namespace std::chrono_literals;
using engine::llama::CacheBudget;
using engine::llama::InferenceSession;
using engine::llama::SpanExecutor;

class Serve : public ServerFixture {
 protected:
  // A reference session over all five blocks in one process.
  std::unique_ptr<InferenceSession> reference(std::int64_t batch, std::int64_t len) {
    return std::make_unique<InferenceSession>(exec(0, 5),
                                              engine::llama::SessionOptions{batch, len, 0ms},
                                              budget_.acquire(batch * len, 0ms));
  }
};

asio::awaitable<lp::Result<net::UnaryAnswer>> unary(lp::Host& h, lp::PeerId p, std::string method,
                                                    hm::Bytes request) {
  const std::string name = std::string(kHandlerPrefix) + method;
  co_return co_await net::call_unary(h, p, name, request);
}

TEST_F(Serve, RpcInfoAnswersEmptyAndBlockUidsAndRefusesUnknownOnes) {
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 2);
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    for (const std::string uid : {"", "stories260K-hf.1"}) {
      hm::pb::ExpertUID req;
      req.set_uid(uid);
      auto ans = co_await unary(*client.host, a.host->id(), "rpc_info", to_bytes(req));
      SERVE_CHECK(ans.ok(), "");
      SERVE_CHECK(!(ans->is_error), "");
      hm::pb::ExpertInfo info;
      SERVE_CHECK(info.ParseFromArray(ans->response.data(), static_cast<int>(ans->response.size())),
                  "");
      auto v = hm::msgpack_decode(
          hm::ByteView(reinterpret_cast<const std::uint8_t*>(info.serialized_info().data()),
                       info.serialized_info().size()));
      SERVE_CHECK(v.ok(), "");
      const std::string text = v->debug_string();
      EXPECT_NE(text.find("cache_tokens_available"), std::string::npos) << text;
      EXPECT_NE(text.find(std::to_string(srv->cache_tokens_available())), std::string::npos);
      EXPECT_EQ(text.find("inference_schema") != std::string::npos, !uid.empty()) << text;
    }
    hm::pb::ExpertUID bad;
    bad.set_uid("stories260K-hf.3");  // block 3 is not in [0, 2)
    auto ans = co_await unary(*client.host, a.host->id(), "rpc_info", to_bytes(bad));
    SERVE_CHECK(ans.ok(), "");
    EXPECT_TRUE(ans->is_error);
  });
  // 4096 span tokens over 2 blocks, in Petals' per-block units.
  EXPECT_EQ(srv->cache_tokens_available(), 4096u * 2);
  stop(srv);
}

TEST_F(Serve, InferenceThroughTwoServersMatchesTheSingleProcessEngine) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto b = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto s02 = serve(a, 0, 2);
  auto s25 = serve(b, 2, 5);
  auto ref = reference(1, 32);
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*b.host))).ok(), "");
    auto sa = co_await InferenceStream::open(*client.host, a.host->id());
    auto sb = co_await InferenceStream::open(*client.host, b.host->id());
    SERVE_CHECK(sa && sb, "");
    std::int64_t pos = 0;
    for (int step = 0; step < 4; ++step) {
      const std::int64_t t = step == 0 ? 5 : 1;
      const auto in = random_hidden(t, seed_ + static_cast<std::uint64_t>(step));
      auto first =
          meta("sa", step, step == 0 ? std::optional<std::int64_t>(32) : std::nullopt, pos);
      auto second =
          meta("sb", step, step == 0 ? std::optional<std::int64_t>(32) : std::nullopt, pos);
      std::string err;
      auto mid =
          co_await sa->step(step_request(petals::chain_uid(kPrefix, 0, 2), 1, in, first), &err);
      SERVE_CHECK(mid.has_value(), err);
      auto out =
          co_await sb->step(step_request(petals::chain_uid(kPrefix, 2, 5), 1, *mid, second), &err);
      SERVE_CHECK(out.has_value(), err);
      const auto want = ref->step(in, t);
      EXPECT_LT(max_abs_diff(*out, want), 1e-4f) << "step " << step;
      pos += t;
    }
    EXPECT_TRUE(co_await sa->close());
    EXPECT_TRUE(co_await sb->close());
  });
  EXPECT_EQ(s02->stats().inference_steps, 4u);
  for (const auto* s : {s02.get(), s25.get()}) {
    const auto st = s->stats();  // informational: time outside the engine per step
    std::printf("serve [%u, %u): handler %.3f ms/step, compute %.3f ms/step\n",
                s->schema().start_block, s->schema().end_block,
                1e3 * st.handler_seconds / static_cast<double>(st.inference_steps),
                1e3 * st.compute_seconds / static_cast<double>(st.inference_steps));
  }
  EXPECT_GT(s02->stats().compute_seconds, 0.0);
  stop(s02);
  stop(s25);
}

TEST_F(Serve, StartFromPositionRollsBackAndHypoIdsReorderTheBatch) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  auto ref = reference(2, 16);
  const auto uid = petals::chain_uid(kPrefix, 0, 5);
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    auto s = co_await InferenceStream::open(*client.host, a.host->id());
    SERVE_CHECK(s != nullptr, "");
    struct Step {
      std::int64_t t, start;
      std::vector<std::int64_t> hypo;
    };
    // Prefill 4, decode 1, roll back to 3 and reorder the two hypotheses, decode again.
    const std::vector<Step> steps{{4, 0, {}}, {1, 4, {}}, {2, 3, {1, 0}}, {1, 5, {0, 0}}};
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto& st = steps[i];
      const auto in = random_hidden(2 * st.t, seed_ + i);
      auto m = meta("rb", static_cast<int>(i),
                    i == 0 ? std::optional<std::int64_t>(16) : std::nullopt, st.start);
      std::string err;
      auto out = co_await s->step(step_request(uid, 2, in, m, st.hypo), &err);
      SERVE_CHECK(out.has_value(), err);
      const auto want = ref->step(in, st.t, st.hypo, st.start);
      EXPECT_LT(max_abs_diff(*out, want), 1e-4f) << "step " << i;
    }
    EXPECT_TRUE(co_await s->close());
  });
  stop(srv);
}

TEST_F(Serve, ForwardUnaryAndStreamMatchTheEngine) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  const auto in = random_hidden(2 * 3, seed_);
  auto cache = exec(0, 5).make_cache(2, 3);
  const auto want = exec(0, 5).forward(in, 2, 3, cache, 0);
  hm::pb::ExpertRequest req;
  req.set_uid(petals::chain_uid(kPrefix, 0, 5));
  *req.add_tensors() = float_tensor({2, 3, kHidden}, in);
  *req.add_tensors() = float_tensor({0}, {});
  const auto m = petals::client_forward_metadata(std::nullopt, 2).encode();
  req.set_metadata(std::string(m.begin(), m.end()));
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    auto ans = co_await unary(*client.host, a.host->id(), "rpc_forward", to_bytes(req));
    SERVE_CHECK(ans.ok(), "");
    SERVE_CHECK(!(ans->is_error), ans->error);
    hm::pb::ExpertResponse resp;
    SERVE_CHECK(resp.ParseFromArray(ans->response.data(), static_cast<int>(ans->response.size())),
                "");
    SERVE_CHECK(resp.tensors_size() == 1, resp.tensors_size());
    EXPECT_LT(max_abs_diff(hm::deserialize_tensor(resp.tensors(0))->to_floats(), want), 1e-4f);

    // The stream variant with tiny parts, so the request and the answer both span messages.
    std::size_t n_parts = 0;
    auto streamed = co_await forward_via_stream(*client.host, a.host->id(), req, 256, &n_parts);
    EXPECT_GT(n_parts, 2u);
    SERVE_CHECK(streamed.has_value(), "");
    EXPECT_LT(max_abs_diff(*streamed, want), 1e-4f);
  });
  EXPECT_EQ(srv->stats().forward_calls, 2u);
  stop(srv);
}

TEST_F(Serve, PushForwardsTheOutputToTheNextServersSession) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto b = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto s02 = serve(a, 0, 2);
  auto s25 = serve(b, 2, 5);
  auto ref = reference(1, 16);
  const auto in = random_hidden(3, seed_);
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*b.host))).ok(), "");
    // a and b must reach each other for the push.
    SERVE_CHECK((co_await a.host->connect(net::test::full_addr(*b.host))).ok(), "");
    auto sb = co_await InferenceStream::open(*client.host, b.host->id());
    auto sa = co_await InferenceStream::open(*client.host, a.host->id());
    SERVE_CHECK(sa && sb, "");
    // Open b's session with an empty step (allocates its cache, answers an empty output).
    std::string err;
    auto empty = co_await sb->step(
        step_request(petals::chain_uid(kPrefix, 2, 5), 1, {}, meta("sb", 0, 16, 0)), &err);
    SERVE_CHECK(empty.has_value(), err);
    EXPECT_TRUE(empty->empty());
    auto req = step_request(petals::chain_uid(kPrefix, 0, 2), 1, in, meta("sa", 1, 16, 0));
    auto md = *petals::parse_request_metadata(hm::ByteView(
        reinterpret_cast<const std::uint8_t*>(req.metadata().data()), req.metadata().size()));
    SERVE_CHECK(
        md.set("next_servers", hm::Value::array({hm::Value::tuple(
                                   {hm::Value::str(b.host->id().to_base58()), hm::Value::str("sb"),
                                    hm::Value::integer(2), hm::Value::integer(5)})}))
            .ok(),
        "");
    const auto enc = md.encode();
    req.set_metadata(std::string(enc.begin(), enc.end()));
    auto mid = co_await sa->step(req, &err);
    SERVE_CHECK(mid.has_value(), err);
    // b computes the pushed step and answers on the client's stream to b.
    auto out = co_await sb->response(&err);
    SERVE_CHECK(out.has_value(), err);
    EXPECT_LT(max_abs_diff(*out, ref->step(in, 3)), 1e-4f);
    EXPECT_TRUE(co_await sa->close());
    EXPECT_TRUE(co_await sb->close());
  });
  stop(s02);
  stop(s25);
}

TEST_F(Serve, BackwardIsRefusedWithAClearError) {
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    hm::pb::ExpertRequest req;
    req.set_uid(petals::chain_uid(kPrefix, 0, 5));
    auto ans = co_await unary(*client.host, a.host->id(), "rpc_backward", to_bytes(req));
    SERVE_CHECK(ans.ok(), "");
    EXPECT_TRUE(ans->is_error);
    EXPECT_NE(ans->error.find("backward is not supported"), std::string::npos) << ans->error;
    const std::vector<hm::Bytes> frames{to_bytes(req)};
    auto st = co_await net::call_stream(
        *client.host, a.host->id(), std::string(kHandlerPrefix) + "rpc_backward_stream", frames);
    SERVE_CHECK(!(st.ok()), "");
    EXPECT_NE(st.error().to_string().find("backward is not supported"), std::string::npos)
        << st.error().to_string();
  });
  stop(srv);
}

TEST_F(Serve, RejectionsGetErrorFramesAndTheServerStaysHealthy) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto c = config();
  c.limits.inference_max_length = 64;
  c.limits.max_batch_size = 16;
  auto srv = serve(a, 0, 5, c);
  const auto full = srv->cache_tokens_available();
  const auto uid = petals::chain_uid(kPrefix, 0, 5);
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    struct Case {
      std::string name;
      hm::pb::ExpertRequest first;
      std::optional<hm::pb::ExpertRequest> second;
    };
    std::vector<Case> cases;
    cases.push_back({"max_length over inference_max_length",
                     step_request(uid, 1, random_hidden(1, seed_), meta("x1", 0, 100, 0)),
                     {}});
    {
      auto r = step_request(uid, 1, random_hidden(1, seed_), meta("x2", 0, 8, 0));
      *r.mutable_tensors(0) = float_tensor({1, 2, 32}, std::vector<float>(64, 0.5f));
      cases.push_back({"wrong hidden size", r, {}});
    }
    cases.push_back(
        {"unknown uid",
         step_request("stories260K-hf.7", 1, random_hidden(1, seed_), meta("x3", 0, 8, 0)),
         {}});
    cases.push_back(
        {"too long for max_length",
         step_request(uid, 1, random_hidden(5, seed_), meta("x4", 0, 8, 0)),
         step_request(uid, 1, random_hidden(5, seed_), meta("x4", 1, std::nullopt, 5))});
    cases.push_back({"task larger than max_batch_size",
                     step_request(uid, 1, random_hidden(20, seed_), meta("x5", 0, 32, 0)),
                     {}});
    for (auto& k : cases) {
      auto s = co_await InferenceStream::open(*client.host, a.host->id());
      SERVE_CHECK(s != nullptr, "");
      std::string err;
      auto out = co_await s->step(k.first, &err);
      if (k.second) {
        SERVE_CHECK(out.has_value(), k.name << ": " << err);
        out = co_await s->step(*k.second, &err);
      }
      EXPECT_FALSE(out.has_value()) << k.name;
      EXPECT_FALSE(err.empty() || err == "<stream ended>") << k.name << ": " << err;
    }
    // Oversized unary forward.
    hm::pb::ExpertRequest fw;
    fw.set_uid(uid);
    *fw.add_tensors() = float_tensor({1, 20, kHidden}, random_hidden(20, seed_));
    auto ans = co_await unary(*client.host, a.host->id(), "rpc_forward", to_bytes(fw));
    SERVE_CHECK(ans.ok(), "");
    EXPECT_TRUE(ans->is_error);
    // Still healthy: every cache came back, and a valid session works.
    asio::steady_timer t(ctx_);
    for (int i = 0; i < 200 && srv->cache_tokens_available() != full; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    EXPECT_EQ(srv->cache_tokens_available(), full);
    auto s = co_await InferenceStream::open(*client.host, a.host->id());
    std::string err;
    auto ok =
        co_await s->step(step_request(uid, 1, random_hidden(2, seed_), meta("ok", 0, 8, 0)), &err);
    EXPECT_TRUE(ok.has_value()) << err;
    EXPECT_TRUE(co_await s->close());
  });
  stop(srv);
}

TEST_F(Serve, AClientThatVanishesMidSessionFreesItsCacheAtOnce) {
  auto a = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  const auto full = srv->cache_tokens_available();
  {
    auto client = net::test::make_node(ctx_);
    run_coro(ctx_, [&]() -> asio::awaitable<void> {
      SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
      auto s = co_await InferenceStream::open(*client.host, a.host->id());
      std::string err;
      auto out = co_await s->step(step_request(petals::chain_uid(kPrefix, 0, 5), 1,
                                               random_hidden(2, seed_), meta("v", 0, 100, 0)),
                                  &err);
      SERVE_CHECK(out.has_value(), err);
      EXPECT_EQ(srv->cache_tokens_available(), full - 100 * 5);
      EXPECT_EQ(srv->open_sessions(), 1u);
      co_await client.host->close();  // the whole peer goes away, no close message
    });
  }
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    asio::steady_timer t(ctx_);
    for (int i = 0; i < 300 && (srv->cache_tokens_available() != full || srv->open_sessions());
         ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  });
  EXPECT_EQ(srv->cache_tokens_available(), full);
  EXPECT_EQ(srv->open_sessions(), 0u);
  EXPECT_EQ(srv->stats().sessions_closed, 1u);
  stop(srv);
}

TEST_F(Serve, ASilentClientIsDroppedAfterStepTimeoutAndItsCacheFreed) {
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto c = config();
  c.limits.step_timeout = 0.3;
  auto srv = serve(a, 0, 5, c);
  const auto full = srv->cache_tokens_available();
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    auto s = co_await InferenceStream::open(*client.host, a.host->id());
    std::string err;
    auto out = co_await s->step(step_request(petals::chain_uid(kPrefix, 0, 5), 1,
                                             random_hidden(2, seed_), meta("quiet", 0, 64, 0)),
                                &err);
    SERVE_CHECK(out.has_value(), err);
    EXPECT_LT(srv->cache_tokens_available(), full);
    // No further request: Petals ends such a stream silently after step_timeout.
    auto next = co_await s->response(&err);
    EXPECT_FALSE(next.has_value());
    EXPECT_EQ(err, "<stream ended>");
    // The release runs on the compute worker right after the stream ends.
    asio::steady_timer t(ctx_);
    for (int i = 0; i < 100 && srv->cache_tokens_available() != full; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  });
  EXPECT_EQ(srv->cache_tokens_available(), full);
  EXPECT_EQ(srv->open_sessions(), 0u);
  stop(srv);
}

TEST_F(Serve, ShutdownFailsOpenSessionsWithAnErrorFrameAndFreesTheirCache) {
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  const auto full = srv->cache_tokens_available();
  std::string err;
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    auto s = co_await InferenceStream::open(*client.host, a.host->id());
    auto out = co_await s->step(step_request(petals::chain_uid(kPrefix, 0, 5), 1,
                                             random_hidden(2, seed_), meta("open", 0, 32, 0)),
                                &err);
    SERVE_CHECK(out.has_value(), err);
    bool down = false;
    asio::co_spawn(
        ctx_, [&]() -> asio::awaitable<void> { co_await srv->shutdown(); },
        [&](std::exception_ptr) { down = true; });
    auto next = co_await s->response(&err);
    EXPECT_FALSE(next.has_value());
    asio::steady_timer t(ctx_);
    while (!down) {
      t.expires_after(5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  });
  EXPECT_EQ(err, "server is shutting down");
  EXPECT_EQ(srv->state(), petals::ServerState::offline);
  EXPECT_EQ(srv->open_sessions(), 0u);
  EXPECT_EQ(srv->cache_tokens_available(), full);
}

TEST_F(Serve, AServerOnVulkanMatchesTheCpuEngine) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::unique_ptr<engine::Backend> vk;
  try {
    vk = engine::make_backend("vulkan");
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no Vulkan device: " << e.what();
  }
  {
    SpanExecutor vexec(*vk, *src_, 0, 5);
    auto a = net::test::make_node(ctx_);
    auto client = net::test::make_node(ctx_);
    auto srv = PetalsServer::create(a.host, nullptr, vexec, config());
    run_coro(ctx_, srv->start());
    auto ref = reference(1, 16);
    run_coro(ctx_, [&]() -> asio::awaitable<void> {
      SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
      auto s = co_await InferenceStream::open(*client.host, a.host->id());
      std::int64_t pos = 0;
      for (int k = 0; k < 3; ++k) {
        const std::int64_t t = k == 0 ? 4 : 1;
        const auto in = random_hidden(t, seed_ + static_cast<std::uint64_t>(k));
        std::string err;
        auto out = co_await s->step(
            step_request(
                petals::chain_uid(kPrefix, 0, 5), 1, in,
                meta("vk", k, k == 0 ? std::optional<std::int64_t>(16) : std::nullopt, pos)),
            &err);
        SERVE_CHECK(out.has_value(), err);
        EXPECT_LT(max_abs_diff(*out, ref->step(in, t)), 2e-3f) << "step " << k;
        pos += t;
      }
      EXPECT_TRUE(co_await s->close());
    });
    stop(srv);
  }
}

TEST_F(Serve, ConcurrentSessionsGiveTheSameResultsAsSequentialOnes) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto a = net::test::make_node(ctx_);
  auto client = net::test::make_node(ctx_);
  auto srv = serve(a, 0, 5);
  constexpr int kSessions = 4, kSteps = 4;
  std::vector<std::vector<std::vector<float>>> inputs(kSessions), got(kSessions);
  for (int s = 0; s < kSessions; ++s)
    for (int k = 0; k < kSteps; ++k)
      inputs[s].push_back(
          random_hidden(k == 0 ? 3 : 1, seed_ + static_cast<std::uint64_t>(s * 100 + k)));
  run_coro(ctx_, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*a.host))).ok(), "");
    int done = 0;
    for (int s = 0; s < kSessions; ++s)
      asio::co_spawn(
          ctx_,
          [&, s]() -> asio::awaitable<void> {
            auto st = co_await InferenceStream::open(*client.host, a.host->id());
            std::int64_t pos = 0;
            for (int k = 0; k < kSteps && st; ++k) {
              const auto name = "c" + std::to_string(s);
              auto out = co_await st->step(step_request(
                  petals::chain_uid(kPrefix, 0, 5), 1, inputs[s][k],
                  meta(name, k, k == 0 ? std::optional<std::int64_t>(16) : std::nullopt, pos)));
              if (!out) break;
              got[s].push_back(*out);
              pos += k == 0 ? 3 : 1;
            }
            if (st) co_await st->close();
            ++done;
          },
          asio::detached);
    asio::steady_timer t(ctx_);
    while (done < kSessions) {
      t.expires_after(5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
  });
  for (int s = 0; s < kSessions; ++s) {
    auto ref = reference(1, 16);
    ASSERT_EQ(got[s].size(), static_cast<std::size_t>(kSteps)) << "session " << s;
    for (int k = 0; k < kSteps; ++k)
      EXPECT_LT(max_abs_diff(got[s][k], ref->step(inputs[s][k], k == 0 ? 3 : 1)), 1e-4f)
          << "session " << s << " step " << k;
  }
  const auto st = srv->stats();
  EXPECT_EQ(st.inference_steps, static_cast<std::uint64_t>(kSessions * kSteps));
  // Informational (no timing assertions in tests): server time per step outside the engine.
  std::printf("serve: %llu steps, handler %.3f ms/step, compute %.3f ms/step, %llu batched\n",
              static_cast<unsigned long long>(st.inference_steps),
              1e3 * st.handler_seconds / static_cast<double>(st.inference_steps),
              1e3 * st.compute_seconds / static_cast<double>(st.inference_steps),
              static_cast<unsigned long long>(st.batched_submissions));
  stop(srv);
}

}  // namespace
}  // namespace kwaai::serve::test
