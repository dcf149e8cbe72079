// End to end on loopback: a bootstrap DHT node and PetalsServers splitting stories260K in this
// process; the client reads their records, routes, and generates through rpc_inference.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "cli/client/client.hpp"
#include "cli/client/local_swarm.hpp"
#include "engine/llama/generate.hpp"
#include "engine/llama/model.hpp"
#include "engine/model/model_source.hpp"
#include "tests/engine/llama/llama_test_util.hpp"

namespace kwaai::client {
namespace {

namespace test = kwaai::engine::llama::test;

class ClientSwarm : public ::testing::Test {
 protected:
  ClientSwarm()
      : be_(engine::make_backend("cpu")),
        src_(engine::open_model(test::stories_dir())),
        ends_(*be_, *src_) {}

  ClientConfig config(const LocalSwarm& swarm) const {
    ClientConfig c;
    c.initial_peers = swarm.initial_peers();
    c.dht_prefix = swarm.dht_prefix();
    c.min_backoff = std::chrono::milliseconds(0);  // retries at once: tests must be quick
    c.timeouts.step = std::chrono::milliseconds(20000);
    return c;
  }
  static GenerateOptions greedy_from_bos(std::int64_t n = 128) {
    GenerateOptions g;
    g.prompt = {1};
    g.max_new_tokens = n;
    return g;
  }
  std::unique_ptr<engine::Backend> be_;
  std::unique_ptr<engine::ModelSource> src_;
  engine::llama::ModelEnds ends_;
  const test::Reference ref_;
};

TEST_F(ClientSwarm, TwoServersGiveTheReferenceGreedyIds) {
  LocalSwarm swarm(test::stories_dir(), "stories260K-hf");
  const auto a = swarm.add_server(0, 3);
  const auto b = swarm.add_server(3, 5);
  PetalsClient client(ends_, config(swarm));
  std::vector<std::vector<RouteHop>> routes;
  auto opt = greedy_from_bos();
  std::size_t streamed = 0;
  opt.on_token = [&](std::int32_t) { ++streamed; };
  opt.on_route = [&](const std::vector<RouteHop>& r) { routes.push_back(r); };
  const GenerateResult res = client.generate(opt);
  EXPECT_EQ(res.ids, ref_.i32("greedy_from_bos"));
  EXPECT_EQ(streamed, 128u);
  const std::vector<RouteHop> want{{swarm.peer_id(a), 0, 3}, {swarm.peer_id(b), 3, 5}};
  EXPECT_EQ(res.route, want);
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0], want);
  EXPECT_TRUE(res.failures.empty());
  EXPECT_EQ(res.wire_dtype, "float32");
  EXPECT_GT(res.tokens_per_s, 0);
  // One session per server, one step per token, all closed.
  EXPECT_EQ(swarm.stats(a).inference_steps, 128u);
  EXPECT_EQ(swarm.stats(b).inference_steps, 128u);
}

TEST_F(ClientSwarm, ThreeServersGiveTheReferenceGreedyIds) {
  LocalSwarm swarm(test::stories_dir(), "stories260K-hf");
  swarm.add_server(0, 2);
  swarm.add_server(2, 4);
  swarm.add_server(4, 5);
  PetalsClient client(ends_, config(swarm));
  const GenerateResult res = client.generate(greedy_from_bos());
  EXPECT_EQ(res.ids, ref_.i32("greedy_from_bos"));
  ASSERT_EQ(res.route.size(), 3u);
  EXPECT_EQ(res.route[1].start, 2u);
  EXPECT_EQ(res.route[1].end, 4u);
}

// Overlapping servers: the route hops where the first span ends, so the second server gets a
// sub-span ("prefix.3 prefix.4") of its [1, 5) and must run only those two blocks.
TEST_F(ClientSwarm, OverlappingServersUseASubSpanOfTheSecondAndGiveTheReferenceGreedyIds) {
  LocalSwarm swarm(test::stories_dir(), "stories260K-hf");
  const auto a = swarm.add_server(0, 3);
  const auto b = swarm.add_server(1, 5);
  PetalsClient client(ends_, config(swarm));
  const GenerateResult res = client.generate(greedy_from_bos());
  EXPECT_EQ(res.ids, ref_.i32("greedy_from_bos"));
  const std::vector<RouteHop> want{{swarm.peer_id(a), 0, 3}, {swarm.peer_id(b), 3, 5}};
  EXPECT_EQ(res.route, want);
  EXPECT_TRUE(res.failures.empty());
  EXPECT_EQ(swarm.stats(b).inference_steps, 128u);
}

TEST_F(ClientSwarm, AServerKilledMidGenerationIsReplacedByAnotherHoldingTheSameBlocks) {
  LocalSwarm swarm(test::stories_dir(), "stories260K-hf");
  swarm.add_server(0, 3);
  swarm.add_server(3, 5);
  swarm.add_server(3, 5);
  PetalsClient client(ends_, config(swarm));
  auto opt = greedy_from_bos();
  std::vector<std::vector<RouteHop>> routes;
  opt.on_route = [&](const std::vector<RouteHop>& r) { routes.push_back(r); };
  std::size_t n = 0;
  std::string victim;
  opt.on_token = [&](std::int32_t) {
    if (++n == 40) {
      victim = routes.at(0).at(1).peer;  // whichever of the two [3:5) servers was chosen
      swarm.kill(swarm.index_of(victim));
    }
  };
  const GenerateResult res = client.generate(opt);
  // The replacement got the victim's whole input history replayed, so nothing changes.
  EXPECT_EQ(res.ids, ref_.i32("greedy_from_bos"));
  ASSERT_FALSE(res.failures.empty());
  EXPECT_NE(res.failures[0].find(victim), std::string::npos) << res.failures[0];
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(res.route.at(1).start, 3u);
  EXPECT_EQ(res.route.at(1).end, 5u);
  EXPECT_NE(res.route.at(1).peer, victim);
  EXPECT_EQ(res.route.at(0), routes[0].at(0));  // the healthy first server kept its session
}

TEST_F(ClientSwarm, TheOnlyHolderKilledMidGenerationEndsWithAClearError) {
  LocalSwarm swarm(test::stories_dir(), "stories260K-hf");
  swarm.add_server(0, 3);
  const auto b = swarm.add_server(3, 5);
  auto cfg = config(swarm);
  cfg.max_retries = 2;
  cfg.timeouts.connect = std::chrono::milliseconds(2000);
  PetalsClient client(ends_, cfg);
  auto opt = greedy_from_bos(32);
  std::size_t n = 0;
  opt.on_token = [&](std::int32_t) {
    if (++n == 5) swarm.kill(b);
  };
  try {
    (void)client.generate(opt);
    FAIL() << "generation went on without any server for blocks 3..5";
  } catch (const ClientError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(swarm.peer_id(b)), std::string::npos) << what;
    EXPECT_NE(what.find("[3:5)"), std::string::npos) << what;
  }
  EXPECT_EQ(n, 5u);
}

TEST_F(ClientSwarm, Bfloat16ServersLikePetalsDefaultsStillGenerate) {
  // Petals' default wire dtype for a float32 checkpoint: hidden states are rounded to bf16
  // between servers, so ids may drift from the float32 reference, but every step must decode.
  LocalSwarm swarm(test::stories_dir(), "stories260K-hf");
  auto sc = LocalSwarm::default_config();
  sc.dtype = p2p::hivemind::DType::bfloat16;
  swarm.add_server(0, 3, sc);
  swarm.add_server(3, 5, sc);
  PetalsClient client(ends_, config(swarm));
  const GenerateResult res = client.generate(greedy_from_bos(24));
  ASSERT_EQ(res.ids.size(), 24u);
  EXPECT_TRUE(res.failures.empty());
  EXPECT_EQ(res.wire_dtype, "bfloat16");  // inputs cast as the rpc_info schema says
  // The first tokens are robust to bf16 rounding on this model.
  const auto ref = ref_.i32("greedy_from_bos");
  EXPECT_EQ(std::vector<std::int32_t>(res.ids.begin(), res.ids.begin() + 4),
            std::vector<std::int32_t>(ref.begin(), ref.begin() + 4));
}

TEST_F(ClientSwarm, NoChainCoveringAllBlocksIsAClearError) {
  LocalSwarm swarm(test::stories_dir(), "stories260K-hf");
  swarm.add_server(0, 3);
  PetalsClient client(ends_, config(swarm));
  try {
    (void)client.generate(greedy_from_bos(4));
    FAIL() << "generated without blocks 3..5";
  } catch (const ClientError& e) {
    EXPECT_NE(std::string(e.what()).find("no server holds block 3"), std::string::npos) << e.what();
  }
  // A prefix nobody serves: no block at all.
  auto cfg = config(swarm);
  cfg.dht_prefix = "nobody-serves-this";
  PetalsClient other(ends_, cfg);
  EXPECT_THROW((void)other.generate(greedy_from_bos(4)), ClientError);
}

TEST_F(ClientSwarm, BadRequestsFailBeforeTouchingTheNetwork) {
  ClientConfig cfg;
  cfg.dht_prefix = "stories260K-hf";
  PetalsClient no_peers(ends_, cfg);
  EXPECT_THROW((void)no_peers.generate(greedy_from_bos(4)), ClientError);
  cfg.initial_peers = {"/ip4/127.0.0.1/tcp/1"};  // no /p2p suffix
  PetalsClient bad_peer(ends_, cfg);
  EXPECT_THROW((void)bad_peer.generate(greedy_from_bos(4)), ClientError);
  cfg.initial_peers = {};
  GenerateOptions empty;
  EXPECT_THROW((void)no_peers.generate(empty), ClientError);
}

// A family's tiny checkpoint split over two local servers at block `split`: the servers run the
// blocks from the config they load, and the greedy ids equal one process's.
void expect_two_server_ids_equal_single_process(const std::string& model, std::int64_t split) {
  const std::string dir = std::string(KWAAI_SHARED_DIR) + "/models/" + model;
  auto be = engine::make_backend("cpu");
  auto src = engine::open_model(dir);
  engine::llama::ModelEnds ends(*be, *src);
  LocalSwarm swarm(dir, model + "-hf");
  swarm.add_server(0, split);
  swarm.add_server(split, src->config().layers);
  ClientConfig c;
  c.initial_peers = swarm.initial_peers();
  c.dht_prefix = swarm.dht_prefix();
  c.min_backoff = std::chrono::milliseconds(0);
  c.timeouts.step = std::chrono::milliseconds(20000);
  PetalsClient client(ends, c);
  GenerateOptions g;
  const auto bos = static_cast<std::int32_t>(src->config().bos_id);
  g.prompt = {bos};
  g.max_new_tokens = 32;
  const GenerateResult res = client.generate(g);

  engine::llama::LlamaModel model_(*be, *src);
  engine::llama::GenerateOptions lo;
  lo.max_new_tokens = 32;
  EXPECT_EQ(res.ids, engine::llama::generate(model_, std::span(&bos, 1), lo).ids);
  EXPECT_TRUE(res.failures.empty());
}

// Mistral: sliding window 8, shorter than the 32 generated positions.
TEST(ClientSwarmFamilies, MistralOverTwoServersEqualsTheSingleProcessGreedyIds) {
  ASSERT_EQ(engine::open_model(std::string(KWAAI_SHARED_DIR) + "/models/tiny-mistral")
                ->config()
                .sliding_window,
            8);
  expect_two_server_ids_equal_single_process("tiny-mistral", 2);
}

// Mixtral: the sparse MoE blocks, 1 + 2 of 3 (each server routes its own blocks' tokens).
TEST(ClientSwarmFamilies, MixtralOverTwoServersEqualsTheSingleProcessGreedyIds) {
  ASSERT_EQ(
      engine::open_model(std::string(KWAAI_SHARED_DIR) + "/models/tiny-mixtral")->config().experts,
      4);
  expect_two_server_ids_equal_single_process("tiny-mixtral", 1);
}

// Falcon, both layouts: 7B's multi-query blocks split 2 + 2, the new layout's 1 + 2.
TEST(ClientSwarmFamilies, FalconOverTwoServersEqualsTheSingleProcessGreedyIds) {
  expect_two_server_ids_equal_single_process("tiny-falcon-7b", 2);
  expect_two_server_ids_equal_single_process("tiny-falcon-new", 1);
}

// Bloom: ALiBi biases follow the absolute cache position on each server across steps.
TEST(ClientSwarmFamilies, BloomOverTwoServersEqualsTheSingleProcessGreedyIds) {
  expect_two_server_ids_equal_single_process("tiny-bloom", 1);
}

}  // namespace
}  // namespace kwaai::client
