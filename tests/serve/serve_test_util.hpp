// Shared fixture of the serve tests: stories260K on the CPU backend, in-process libp2p hosts on
// 127.0.0.1 running one io_context on the test thread, and a small Petals client made of raw
// ExpertRequests (client_inference_metadata) over real rpc_inference streams.
#pragma once

#include <gtest/gtest.h>

#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cli/serve/petals_server.hpp"
#include "engine/llama/session.hpp"
#include "engine/model/model_source.hpp"
#include "p2p/hivemind/framing.hpp"
#include "p2p/petals/inference_protocol.hpp"
#include "p2p/petals/metadata.hpp"
#include "p2p/petals/uids.hpp"
#include "tests/p2p/hivemind/net/net_test_util.hpp"

// ASSERT for coroutines: records the failure with a message and leaves the coroutine.
#define SERVE_CHECK(cond, msg)                         \
  do {                                                 \
    if (!(cond)) {                                     \
      ADD_FAILURE() << "failed: " #cond " -- " << msg; \
      co_return;                                       \
    }                                                  \
  } while (0)

namespace kwaai::serve::test {

namespace lp = kwaai::p2p::libp2p;
namespace hm = kwaai::p2p::hivemind;
namespace net = kwaai::p2p::hivemind::net;
namespace petals = kwaai::p2p::petals;
using net::test::run_coro;

inline constexpr std::int64_t kHidden = 64;  // stories260K
inline constexpr const char* kPrefix = "stories260K-hf";

inline std::string stories_dir() {
  return std::string(KWAAI_SHARED_DIR) + "/models/stories260K";
}

inline std::vector<float> random_hidden(std::int64_t rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(rows * kHidden));
  for (auto& x : v) x = n(rng);
  return v;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

inline hm::pb::Tensor float_tensor(std::vector<std::int64_t> shape, const std::vector<float>& v) {
  return *hm::serialize_tensor(hm::HostTensor::from_floats(std::move(shape), v), hm::pb::NONE);
}

inline hm::pb::Tensor int64_tensor(const std::vector<std::int64_t>& v) {
  hm::HostTensor t;
  t.dtype = hm::DType::int64;
  t.shape = {static_cast<std::int64_t>(v.size())};
  t.data.resize(v.size() * 8);
  if (!v.empty()) std::memcpy(t.data.data(), v.data(), t.data.size());
  return *hm::serialize_tensor(t, hm::pb::NONE);
}

inline hm::Bytes to_bytes(const google::protobuf::MessageLite& m) {
  hm::Bytes out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

// rpc_forward_stream with `req` split into messages of `part_bytes`; the reassembled output, or
// nullopt after recording a failure. `parts_sent` gets the number of request messages.
inline asio::awaitable<std::optional<std::vector<float>>> forward_via_stream(
    lp::Host& client, lp::PeerId server, hm::pb::ExpertRequest req, std::size_t part_bytes,
    std::size_t* parts_sent = nullptr) {
  std::vector<hm::Bytes> parts;
  for (const auto& p : petals::split_stream_request(req, part_bytes)) parts.push_back(to_bytes(p));
  if (parts_sent) *parts_sent = parts.size();
  const std::string method = std::string(kHandlerPrefix) + "rpc_forward_stream";
  auto got = co_await net::call_stream(client, server, method, parts);
  if (!got.ok()) {
    ADD_FAILURE() << "rpc_forward_stream: " << got.error().to_string();
    co_return std::nullopt;
  }
  std::vector<hm::pb::Tensor> pieces;
  for (const auto& g : *got) {
    hm::pb::ExpertResponse r;
    if (!r.ParseFromArray(g.data(), static_cast<int>(g.size()))) {
      ADD_FAILURE() << "rpc_forward_stream: a response is not an ExpertResponse";
      co_return std::nullopt;
    }
    for (const auto& t : r.tensors()) pieces.push_back(t);
  }
  auto whole = hm::combine_from_streaming(pieces);
  if (!whole.ok()) {
    ADD_FAILURE() << "rpc_forward_stream: the parts do not combine";
    co_return std::nullopt;
  }
  co_return hm::deserialize_tensor(*whole)->to_floats();
}

// One inference step as a Petals client sends it: hidden [B, T, H], dummy prompts, hypo_ids.
inline hm::pb::ExpertRequest step_request(const std::string& uid, std::int64_t batch,
                                          const std::vector<float>& hidden,
                                          const petals::ClientStepMetadata& m,
                                          const std::vector<std::int64_t>& hypo = {}) {
  hm::pb::ExpertRequest r;
  r.set_uid(uid);
  const std::int64_t t = static_cast<std::int64_t>(hidden.size()) / (batch * kHidden);
  *r.add_tensors() = float_tensor({batch, t, kHidden}, hidden);
  *r.add_tensors() = float_tensor({0}, {});
  *r.add_tensors() = int64_tensor(hypo);
  const auto meta = petals::client_inference_metadata(m).encode();
  r.set_metadata(std::string(meta.begin(), meta.end()));
  return r;
}

inline petals::ClientStepMetadata meta(const std::string& session, int step,
                                       std::optional<std::int64_t> max_length, std::int64_t start) {
  petals::ClientStepMetadata m;
  m.session_id = session;
  m.step_id = session + "-step-" + std::to_string(step);
  m.max_length = max_length;
  m.start_from_position = start;
  return m;
}

// The client end of one rpc_inference stream.
class InferenceStream {
 public:
  static asio::awaitable<std::unique_ptr<InferenceStream>> open(lp::Host& client,
                                                                const lp::PeerId& server) {
    std::vector<std::string> protos{std::string(kHandlerPrefix) + "rpc_inference"};
    auto ns = co_await client.new_stream(server, protos);
    if (!ns) co_return nullptr;
    co_return std::make_unique<InferenceStream>(ns->stream);
  }
  explicit InferenceStream(lp::YamuxStreamPtr s)
      : raw_(s), fs_(std::move(s), hm::kDefaultMaxStreamFrameBytes) {}

  // Sends a request; the next frame: the output as floats, or the error text in `error`.
  // (Parameters by value and named buffers: nothing a suspended coroutine reads is a temporary.)
  asio::awaitable<std::optional<std::vector<float>>> step(hm::pb::ExpertRequest r,
                                                          std::string* error = nullptr) {
    const hm::Bytes bytes = to_bytes(r);
    if (!(co_await fs_.write_message(bytes)).ok()) co_return std::nullopt;
    co_return co_await response(error);
  }
  asio::awaitable<std::optional<std::vector<float>>> response(std::string* error = nullptr) {
    auto f = co_await fs_.read();
    if (!f || !*f) {
      if (error) *error = "<stream ended>";
      co_return std::nullopt;
    }
    if ((*f)->marker == hm::FrameMarker::error) {
      if (error) {
        auto m = hm::parse_rpc_error((*f)->payload);
        *error = m ? *m : std::string("<bad error frame>");
      }
      co_return std::nullopt;
    }
    hm::pb::ExpertResponse resp;
    if (!resp.ParseFromArray((*f)->payload.data(), static_cast<int>((*f)->payload.size())) ||
        resp.tensors_size() != 1)
      co_return std::nullopt;
    auto t = hm::deserialize_tensor(resp.tensors(0));
    if (!t) co_return std::nullopt;
    co_return t->to_floats();
  }
  // Petals' close: an empty request, then END_OF_STREAM; the server then ends the stream.
  asio::awaitable<bool> close() {
    const hm::Bytes bytes = to_bytes(hm::pb::ExpertRequest{});
    (void)co_await fs_.write_message(bytes);
    (void)co_await fs_.write_end_of_stream();
    auto f = co_await fs_.read();
    co_return f.ok() && !f->has_value();
  }
  net::FramedStream& framed() { return fs_; }
  lp::YamuxStream& raw() { return *raw_; }

 private:
  lp::YamuxStreamPtr raw_;
  net::FramedStream fs_;
};

// A CPU backend, stories260K, span executors loaded on demand, in-process servers on ctx_.
class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    be_ = engine::make_backend("cpu");
    src_ = engine::open_model(stories_dir());
    seed_ = std::random_device{}();
  }
  engine::llama::SpanExecutor& exec(std::int64_t a, std::int64_t b) {
    auto& e = execs_[{a, b}];
    if (!e) e = std::make_unique<engine::llama::SpanExecutor>(*be_, *src_, a, b);
    return *e;
  }
  static ServerConfig config() {
    ServerConfig c;
    c.dht_prefix = kPrefix;
    c.announce = false;
    c.dtype = hm::DType::float32;  // exact comparisons with the engine
    c.max_cache_tokens = 4096;
    return c;
  }
  std::shared_ptr<PetalsServer> serve(lp::Libp2pNode& node, std::int64_t a, std::int64_t b,
                                      ServerConfig c = config()) {
    auto s = PetalsServer::create(node.host, nullptr, exec(a, b), c);
    run_coro(ctx_, s->start());
    return s;
  }
  void stop(const std::shared_ptr<PetalsServer>& s) { run_coro(ctx_, s->shutdown()); }

  std::unique_ptr<engine::Backend> be_;
  std::unique_ptr<engine::ModelSource> src_;
  std::map<std::pair<std::int64_t, std::int64_t>, std::unique_ptr<engine::llama::SpanExecutor>>
      execs_;
  engine::llama::CacheBudget budget_{1 << 20};  // for reference sessions of the tests
  std::uint64_t seed_ = 0;
  // Last, so it is destroyed first: coroutine frames it still holds may own engine objects.
  asio::io_context ctx_;
};

}  // namespace kwaai::serve::test
