// Real Petals client bytes (shared/vectors/hivemind/petals_rpc.json, captured from Petals with
// hivemind 1.1.12 on stories260K blocks [1, 4)) fed to the handlers: the rpc_inference stream
// frames exactly as a Python client wrote them, rpc_forward, rpc_push; the outputs must match
// the engine and the Python server's captured responses.
#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/serve/serve_test_util.hpp"

namespace kwaai::serve::test {
namespace {

using engine::llama::SpanExecutor;

nlohmann::json load_vectors() {
  std::ifstream f(std::string(KWAAI_SHARED_DIR) + "/vectors/hivemind/petals_rpc.json");
  return nlohmann::json::parse(f);
}

const nlohmann::json& entry(const nlohmann::json& v, const std::string& name) {
  for (const auto& e : v["entries"])
    if (e["name"] == name) return e;
  throw std::runtime_error("no vector named " + name);
}

hm::Bytes hex(const nlohmann::json& s) {
  return *hm::from_hex(s.get<std::string>());
}

template <class Msg>
Msg parse(const hm::Bytes& b) {
  Msg m;
  EXPECT_TRUE(m.ParseFromArray(b.data(), static_cast<int>(b.size())));
  return m;
}

// The schema of the server the vectors were captured from (float32 outputs, its dht prefix),
// not announcing: these tests talk to it directly.
ServerConfig captured_server_config(const nlohmann::json& v) {
  ServerConfig c;
  c.dht_prefix = v["dht_prefix"].get<std::string>();
  c.announce = false;
  c.dtype = hm::DType::float32;
  return c;
}

std::vector<float> first_tensor(const hm::pb::ExpertResponse& r) {
  if (r.tensors_size() < 1) return {};
  return hm::deserialize_tensor(r.tensors(0))->to_floats();
}

TEST(ServeVectors, APythonClientsInferenceStreamGetsTheOutputsOfThePythonServer) {
  const auto v = load_vectors();
  asio::io_context ctx;
  auto be = engine::make_backend("cpu");
  auto src = engine::open_model(stories_dir());
  SpanExecutor exec(*be, *src, 1, 4);
  SpanExecutor ref_exec(*be, *src, 1, 4);
  auto node = net::test::make_node(ctx);
  auto client = net::test::make_node(ctx);
  const ServerConfig c = captured_server_config(v);
  auto srv = PetalsServer::create(node.host, nullptr, exec, c);
  run_coro(ctx, srv->start());
  engine::llama::CacheBudget budget(1 << 16);
  engine::llama::InferenceSession ref(ref_exec, {1, 128, std::chrono::milliseconds(0)},
                                      budget.acquire(128, std::chrono::milliseconds(0)));
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*node.host))).ok(), "");
    auto s = co_await InferenceStream::open(*client.host, node.host->id());
    SERVE_CHECK(s != nullptr, "");
    const std::vector<std::pair<std::string, std::string>> steps{
        {"rpc_inference step 1 (prefill 17 tokens)", "rpc_inference step 1 response"},
        {"rpc_inference step 2 (decode 1 token)", "rpc_inference step 2 response"}};
    for (const auto& sa : steps) {
      const std::string& step = sa.first;
      const std::string& answer = sa.second;
      const auto& e = entry(v, step);
      const hm::Bytes frame = hex(e["stream_frame_hex"]);
      SERVE_CHECK((co_await s->raw().write(frame)).ok(), step);
      std::string err;
      auto out = co_await s->response(&err);
      SERVE_CHECK(out.has_value(), step << ": " << err);
      // Same bytes through the engine in one process.
      const auto req = parse<hm::pb::ExpertRequest>(hex(e["bytes_hex"]));
      const auto in = hm::deserialize_tensor(req.tensors(0))->to_floats();
      const auto want = ref.step(in, static_cast<std::int64_t>(in.size()) / kHidden);
      EXPECT_LT(max_abs_diff(*out, want), 1e-4f) << step;
      // And the Python server's answer (float32 torch vs our kernels: small rounding only).
      const auto py =
          first_tensor(parse<hm::pb::ExpertResponse>(hex(entry(v, answer)["bytes_hex"])));
      EXPECT_LT(max_abs_diff(*out, py), 2e-3f) << step;
    }
    // The client's close message and END_OF_STREAM, as captured: the server ends the stream.
    const auto& close = entry(v, "rpc_inference close message");
    const hm::Bytes close_frame = hex(close["stream_frame_hex"]);
    const hm::Bytes eos = hex(close["end_of_stream_frame_hex"]);
    SERVE_CHECK((co_await s->raw().write(close_frame)).ok(), "");
    SERVE_CHECK((co_await s->raw().write(eos)).ok(), "");
    auto f = co_await s->framed().read();
    EXPECT_TRUE(f.ok() && !f->has_value()) << "expected a clean end of stream";
  });
  EXPECT_EQ(srv->stats().sessions_closed, 1u);
  run_coro(ctx, srv->shutdown());
}

TEST(ServeVectors, APythonClientsForwardAndPushRequestsAreAnswered) {
  const auto v = load_vectors();
  asio::io_context ctx;
  auto be = engine::make_backend("cpu");
  auto src = engine::open_model(stories_dir());
  SpanExecutor exec(*be, *src, 1, 4);
  auto node = net::test::make_node(ctx);
  auto client = net::test::make_node(ctx);
  const ServerConfig c = captured_server_config(v);
  auto srv = PetalsServer::create(node.host, nullptr, exec, c);
  run_coro(ctx, srv->start());
  SpanExecutor exec4(*be, *src, 4, 5);
  auto next = net::test::make_node(ctx);
  auto srv4 = PetalsServer::create(next.host, nullptr, exec4, c);
  run_coro(ctx, srv4->start());
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*node.host))).ok(), "");
    const hm::Bytes fwd = hex(entry(v, "rpc_forward request (unary)")["bytes_hex"]);
    const std::string fwd_name = std::string(kHandlerPrefix) + "rpc_forward";
    auto ans = co_await net::call_unary(*client.host, node.host->id(), fwd_name, fwd);
    SERVE_CHECK(ans.ok() && !ans->is_error, (ans.ok() ? ans->error : ans.error().to_string()));
    const auto got = first_tensor(parse<hm::pb::ExpertResponse>(ans->response));
    const auto py = first_tensor(
        parse<hm::pb::ExpertResponse>(hex(entry(v, "rpc_forward response")["bytes_hex"])));
    EXPECT_FALSE(got.empty());
    EXPECT_LT(max_abs_diff(got, py), 2e-3f);
    // A push (to block 4, the next server's span) for a session that server does not have:
    // accepted and ignored, like Petals.
    SERVE_CHECK((co_await client.host->connect(net::test::full_addr(*next.host))).ok(), "");
    const hm::Bytes push = hex(entry(v, "rpc_push request")["bytes_hex"]);
    const std::string push_name = std::string(kHandlerPrefix) + "rpc_push";
    auto pans = co_await net::call_unary(*client.host, next.host->id(), push_name, push);
    SERVE_CHECK(pans.ok() && !pans->is_error, (pans.ok() ? pans->error : pans.error().to_string()));
    EXPECT_EQ(hm::to_hex(pans->response),
              entry(v, "rpc_push response")["bytes_hex"].get<std::string>());
  });
  run_coro(ctx, srv->shutdown());
}

}  // namespace
}  // namespace kwaai::serve::test
