// The DHT side of a server: block records read back with read_block_record through another
// DHT node (JOINING → ONLINE → OFFLINE, the _petals.models registry), and Petals' block
// choice as a pure function.
#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include "cli/serve/block_selection.hpp"
#include "p2p/petals/dht_records.hpp"
#include "tests/serve/serve_test_util.hpp"

namespace kwaai::serve::test {
namespace {

using engine::llama::SpanExecutor;

petals::BlockServer server_on(const std::string& peer, petals::ServerState st, double tp,
                              std::optional<std::uint64_t> start = std::nullopt,
                              std::optional<std::uint64_t> end = std::nullopt) {
  petals::BlockServer s;
  s.peer_id_base58 = peer;
  s.info.state = st;
  s.info.throughput = tp;
  s.info.start_block = start;
  s.info.end_block = end;
  return s;
}

TEST(BlockSelection, AnEmptySwarmGetsTheFirstBlocks) {
  std::vector<petals::BlockRecord> recs(6);
  const auto tp = block_throughputs(recs);
  EXPECT_EQ(tp, std::vector<double>(6, 0.0));
  EXPECT_EQ(choose_best_start(tp, 3), 0u);
}

TEST(BlockSelection, TheLeastServedWindowWinsAndOfflineServersDoNotCount) {
  // A serves [0, 3) at 10, B serves [2, 4) at 5; C is OFFLINE on [4, 6) and is ignored.
  std::vector<petals::BlockRecord> recs(6);
  for (std::uint64_t b = 0; b < 3; ++b)
    recs[b].servers.push_back(server_on("A", petals::ServerState::online, 10, 0, 3));
  for (std::uint64_t b = 2; b < 4; ++b)
    recs[b].servers.push_back(server_on("B", petals::ServerState::joining, 5, 2, 4));
  for (std::uint64_t b = 4; b < 6; ++b)
    recs[b].servers.push_back(server_on("C", petals::ServerState::offline, 100, 4, 6));
  const auto tp = block_throughputs(recs);
  EXPECT_EQ(tp, (std::vector<double>{10, 10, 15, 5, 0, 0}));
  EXPECT_EQ(choose_best_start(tp, 2), 4u);
  EXPECT_EQ(choose_best_start(tp, 3), 3u);  // sorted {0, 0, 5} beats every other window
  EXPECT_EQ(choose_best_start(tp, 6), 0u);
  EXPECT_THROW(choose_best_start(tp, 7), std::invalid_argument);
  EXPECT_THROW(choose_best_start(tp, 0), std::invalid_argument);
}

TEST(BlockSelection, SpansWithoutBoundsCoverTheBlocksTheyAppearIn) {
  // Old servers announce no start/end: Petals grows the span over consecutive records.
  std::vector<petals::BlockRecord> recs(4);
  for (std::uint64_t b = 1; b < 3; ++b)
    recs[b].servers.push_back(server_on("Z", petals::ServerState::online, 2));
  EXPECT_EQ(block_throughputs(recs), (std::vector<double>{0, 2, 2, 0}));
  // Ties between equal windows go to the lowest start.
  EXPECT_EQ(choose_best_start(std::vector<double>{1, 1, 1, 1}, 2), 0u);
}

// Reads one block's record through `reader` (a fresh traversal each time).
asio::awaitable<petals::BlockRecord> read_block(net::DHTNode& reader, std::uint32_t block) {
  const auto key = hm::DHTID::from_key_str(petals::block_uid(kPrefix, block));
  auto v = co_await reader.get(key, /*latest=*/true);
  if (!v || !v->is_dictionary) co_return petals::BlockRecord{};
  co_return petals::read_block_record(v->dictionary.to_value(), reader.now());
}

TEST(ServeAnnounce, RecordsGoJoiningOnlineOfflineWithTheSpanAndRegistry) {
  asio::io_context ctx;
  auto be = engine::make_backend("cpu");
  auto src = engine::open_model(stories_dir());
  SpanExecutor exec(*be, *src, 1, 3);
  auto sn = net::test::make_node(ctx);
  auto rn = net::test::make_node(ctx);
  auto sdht = net::DHTNode::create(sn.host, sn.kad);
  auto rdht = net::DHTNode::create(rn.host, rn.kad);
  ServerConfig c;
  c.dht_prefix = kPrefix;
  c.update_period = 30;
  c.public_name = "serve-test";
  c.model_info = petals::ModelInfo{5, std::nullopt};
  const std::string me = sn.host->id().to_base58();
  std::shared_ptr<PetalsServer> srv;
  auto state_of = [&](const petals::BlockRecord& r) -> std::optional<petals::ServerState> {
    for (const auto& s : r.servers)
      if (s.peer_id_base58 == me) return s.info.state;
    return std::nullopt;
  };
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    const std::vector<lp::Multiaddr> peers{net::test::full_addr(*sn.host)};
    SERVE_CHECK(co_await rdht->bootstrap(peers) == 1, "bootstrap");
    petals::ServerInfo joining;
    joining.state = petals::ServerState::joining;
    joining.throughput = 1;
    SERVE_CHECK(co_await announce_span(*sdht, sn.host->id(), c, 1, 3, joining) == 3,
                "3 stores (2 blocks + registry)");
    auto r = co_await read_block(*rdht, 1);
    EXPECT_EQ(state_of(r), petals::ServerState::joining);

    srv = PetalsServer::create(sn.host, sdht, exec, c);
    co_await srv->start();
    for (std::uint32_t b : {1u, 2u}) {
      r = co_await read_block(*rdht, b);
      EXPECT_EQ(state_of(r), petals::ServerState::online) << "block " << b;
      SERVE_CHECK(!r.servers.empty(), "no servers on block " << b);
      const auto& info = r.servers.front().info;
      EXPECT_EQ(info.start_block, 1u);
      EXPECT_EQ(info.end_block, 3u);
      EXPECT_EQ(info.public_name, "serve-test");
      EXPECT_EQ(info.torch_dtype, "bfloat16");
      EXPECT_EQ(info.cache_tokens_left, 2 * srv->cache_tokens_available());
      // The expiration is now + 2 × update_period.
      EXPECT_NEAR(r.servers.front().expiration_time, rdht->now() + 60, 5);
    }
    EXPECT_TRUE(state_of(co_await read_block(*rdht, 0)) == std::nullopt);  // not ours
    const auto models_key = hm::DHTID::from_key_str(petals::kModelsRegistryKey);
    auto models = co_await rdht->get(models_key, true);
    SERVE_CHECK(models && models->is_dictionary, "no _petals.models record");
    SERVE_CHECK(models->dictionary.items.size() == 1, models->dictionary.items.size());
    EXPECT_EQ(models->dictionary.items[0].subkey.debug_string().find(kPrefix) != std::string::npos,
              true);

    co_await srv->shutdown();
    r = co_await read_block(*rdht, 1);
    EXPECT_EQ(state_of(r), petals::ServerState::offline);
    EXPECT_EQ(srv->state(), petals::ServerState::offline);
  });
}

// Each family's checkpoint announces under its Petals rule (engine config -> family -> prefix).
TEST(ServeDhtPrefix, EachFamilyTakesItsPetalsRule) {
  const std::string models = std::string(KWAAI_SHARED_DIR) + "/models/";
  auto prefix = [&](const std::string& model, const std::string& repo) {
    const auto cfg = engine::open_model(models + model)->config();
    return p2p::petals::derive_dht_prefix(petals_family(cfg), repo).value();
  };
  EXPECT_EQ(prefix("tiny-mistral", "mistralai/Mistral-7B-v0.1"), "Mistral-7B-v0-1-hf");
  EXPECT_EQ(prefix("tiny-mixtral", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
            "mistralai/Mixtral-8x7B-Instruct-v0-1");
  EXPECT_EQ(prefix("tiny-falcon-new", "tiiuae/falcon-180B"), "falcon-180B");
  EXPECT_EQ(prefix("tiny-falcon-7b", "tiiuae/falcon-7b"), "falcon-7b");
  EXPECT_EQ(prefix("tiny-bloom", "bigscience/bloom-560m"), "bigscience/bloom-560m-petals");
}

}  // namespace
}  // namespace kwaai::serve::test
