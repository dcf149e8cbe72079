// DHT records and uids against petals_serverinfo.json's dht_records_example (what Petals'
// declare_active_modules stores and what a DHT node returns for it).
#include <gtest/gtest.h>

#include "p2p/hivemind/dht_id.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/dht_records.hpp"
#include "p2p/petals/uids.hpp"
#include "petals_vectors.hpp"

namespace kwaai::p2p::petals {
namespace {

using namespace testing;
using hivemind::DHTID;

const char* kPeer = "12D3KooWJbA3mQ6GvUqQBvY5JSpUq2yWprBpkfEfT8GNvGxEvvPf";

// The ServerInfo of the example before the announcer sets start_block/end_block.
ServerInfo example_info() {
  ServerInfo i;
  i.state = ServerState::online;
  i.throughput = 100.0;
  i.version = "2.3.0.dev2";
  i.torch_dtype = "float32";
  i.quant_type = "none";
  i.using_relay = false;
  i.cache_tokens_left = 8192;
  i.next_pings.emplace();
  return i;
}

std::string msgpack_hex(const Value& v) {
  return hivemind::to_hex(*hivemind::msgpack_encode(v));
}

TEST(PetalsDhtRecords, AnnouncePlanReproducesDeclareActiveModules) {
  const json ex = load_vectors("petals_serverinfo.json")["dht_records_example"];
  ASSERT_EQ(ex["peer_id"].get<std::string>(), kPeer);
  AnnounceParams p;
  p.dht_prefix = "stories260K-hf";
  p.start_block = 0;
  p.end_block = 5;
  p.peer_id_base58 = kPeer;
  p.update_period = 120;  // the CLI default: lifetime 240 s
  p.now = 1900000000.0 - 240;
  p.model = ModelInfo{5, std::nullopt};
  auto plan = plan_announce(p, example_info());
  ASSERT_TRUE(plan.ok()) << plan.error().what();
  ASSERT_EQ(plan->size(), 6u);
  for (std::size_t i = 0; i < 5; ++i) {
    const json& r = ex["records"][i];
    SCOPED_TRACE(r["uid"].get<std::string>());
    const DhtStore& s = (*plan)[i];
    EXPECT_EQ(s.key, r["uid"].get<std::string>());
    EXPECT_EQ(DHTID::from_key_str(s.key).hex(), r["key_dhtid_hex"].get<std::string>());
    EXPECT_EQ(msgpack_hex(Value::str(s.subkey)), r["store_subkey_hex"].get<std::string>());
    EXPECT_EQ(hivemind::to_hex(s.value), r["store_value_hex"].get<std::string>());
    EXPECT_EQ(s.expiration_time, typed_float(r["expiration_time"]));
  }
  const json& reg = ex["model_registry"];
  const DhtStore& m = plan->back();
  EXPECT_EQ(m.key, reg["key"].get<std::string>());
  EXPECT_EQ(DHTID::from_key_str(m.key).hex(), reg["key_dhtid_hex"].get<std::string>());
  EXPECT_EQ(m.subkey, reg["subkey"].get<std::string>());
  EXPECT_EQ(msgpack_hex(Value::str(m.subkey)), reg["subkey_hex"].get<std::string>());
  EXPECT_EQ(hivemind::to_hex(m.value), reg["value_hex"].get<std::string>());
}

TEST(PetalsDhtRecords, RegistryOnlyForPublicPrefixesAndLiveStates) {
  AnnounceParams p;
  p.dht_prefix = "stories260K-hf";
  p.end_block = 2;
  p.peer_id_base58 = kPeer;
  p.model = ModelInfo{5, std::nullopt};
  ServerInfo off = example_info();
  off.state = ServerState::offline;
  EXPECT_EQ(plan_announce(p, off)->size(), 2u);
  p.dht_prefix = "_private";
  EXPECT_EQ(plan_announce(p, example_info())->size(), 2u);
  EXPECT_EQ(announce_lifetime(p), 120.0);  // Server class default update_period 60
  p.update_period = 1;
  EXPECT_EQ(announce_lifetime(p), kMaxDhtTimeDiscrepancySeconds);
  p.expiration = 30;
  EXPECT_EQ(announce_lifetime(p), 30.0);
  // Refusals: empty span, bad prefix, invalid info.
  p.start_block = 2;
  EXPECT_FALSE(plan_announce(p, example_info()).ok());
  p.start_block = 0;
  p.dht_prefix = "a.b";
  EXPECT_FALSE(plan_announce(p, example_info()).ok());
  p.dht_prefix = "ok";
  ServerInfo bad = example_info();
  bad.throughput = -1;
  EXPECT_FALSE(plan_announce(p, bad).ok());
}

TEST(PetalsDhtRecords, FoundDictionaryReadsBackToPeerAndServerInfo) {
  const json ex = load_vectors("petals_serverinfo.json")["dht_records_example"];
  for (const auto& r : ex["records"]) {
    SCOPED_TRACE(r["uid"].get<std::string>());
    auto found = hivemind::msgpack_decode(hex(r["rpc_find_dictionary_value_hex"]));
    ASSERT_TRUE(found.ok());
    const BlockRecord rec = read_block_record(*found, /*now=*/1.8e9);
    ASSERT_EQ(rec.servers.size(), 1u);
    EXPECT_TRUE(rec.skipped.empty());
    EXPECT_EQ(rec.servers[0].peer_id_base58, kPeer);
    EXPECT_EQ(rec.servers[0].peer_id.size(), 38u);  // identity multihash of an Ed25519 key
    ServerInfo want = example_info();
    want.start_block = 0;
    want.end_block = 5;
    EXPECT_EQ(rec.servers[0].info, want);
    EXPECT_EQ(rec.servers[0].expiration_time, typed_float(r["expiration_time"]));
    // Expired by the reader's clock: dropped, like DictionaryDHTValue.items().
    EXPECT_TRUE(read_block_record(*found, 2e9).servers.empty());
  }
}

TEST(PetalsDhtRecords, ReaderSkipsEntriesPetalsSkips) {
  hivemind::DictionaryDHTValue d;
  ServerInfo good = example_info();
  ServerInfo with_adapter = example_info();
  with_adapter.adapters = {"org/lora"};
  Bytes bad_state = *hivemind::msgpack_encode(
      Value::tuple({Value::integer(3), Value::float64(1.0), Value::map({})}));
  d.items = {
      {Value::str(kPeer), good.encode(), 100},
      {Value::str("QmedTaZXmULqwspJXz44SsPZyTNKxhnnFvYRajfH7MGhCY"), with_adapter.encode(), 100},
      {Value::str("0OIl-not-base58"), good.encode(), 100},
      {Value::str("QmX"), bad_state, 100},
      {Value::integer(5), good.encode(), 100},
      {Value::str("QmY"), Bytes{0xc1}, 100},
      {Value::str("QmZ"), good.encode(), 10},  // expired at now = 50
  };
  d.latest_expiration_time = 100;
  const BlockRecord rec = read_block_record(d.to_value(), 50);
  ASSERT_EQ(rec.servers.size(), 2u);
  EXPECT_EQ(rec.servers[0].peer_id_base58, kPeer);
  EXPECT_EQ(rec.skipped.size(), 4u);
  const BlockRecord only = read_block_record(d.to_value(), 50, std::string("org/lora"));
  ASSERT_EQ(only.servers.size(), 1u);
  EXPECT_EQ(only.servers[0].info, with_adapter);
  // A regular (non-dictionary) value under a block key yields nothing.
  EXPECT_TRUE(read_block_record(Value::bin(good.encode()), 0).servers.empty());
}

TEST(PetalsUids, BlockAndChainUidsParseAndFormat) {
  EXPECT_EQ(block_uid("stories260K-hf", 3), "stories260K-hf.3");
  const json rpc = load_vectors("petals_rpc.json");
  EXPECT_EQ(chain_uid("stories260K-hf", 1, 4), rpc["span_uid"].get<std::string>());
  auto chain = parse_chain_uid(rpc["span_uid"].get<std::string>());
  ASSERT_TRUE(chain.ok());
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_EQ((*chain)[2], (BlockUid{"stories260K-hf", 3}));
  for (const char* bad : {"", "noblock", "a.b.c", "p.", ".1", "p.x", "p.-1", "p.+1", "p. 1",
                          "p.99999999999", "a b.1"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_block_uid(bad).ok());
  }
  EXPECT_FALSE(parse_chain_uid("p.1  p.2").ok());
  EXPECT_FALSE(parse_chain_uid("p.1 p.2 p.3", 2).ok());
}

TEST(PetalsUids, DhtPrefixDerivedPerFamilyAsPetalsDoes) {
  EXPECT_EQ(*derive_dht_prefix(ModelFamily::llama, "meta-llama/Meta-Llama-3.1-405B-Instruct"),
            "Meta-Llama-3-1-405B-Instruct-hf");
  EXPECT_EQ(*derive_dht_prefix(ModelFamily::llama, "example/stories260K"),
            load_vectors("petals_rpc.json")["dht_prefix"].get<std::string>());
  EXPECT_EQ(*derive_dht_prefix(ModelFamily::llama, "meta-llama/Llama-2-70b-hf"), "Llama-2-70b-hf");
  EXPECT_EQ(*derive_dht_prefix(ModelFamily::falcon, "tiiuae/falcon-180B-chat"), "falcon-180B-chat");
  EXPECT_EQ(*derive_dht_prefix(ModelFamily::mixtral, "mistralai/Mixtral-8x22B-Instruct-v0.1"),
            "mistralai/Mixtral-8x22B-Instruct-v0-1");
  EXPECT_EQ(*derive_dht_prefix(ModelFamily::bloom, "bigscience/bloom"), "bigscience/bloom-petals");
  EXPECT_FALSE(derive_dht_prefix(ModelFamily::llama, "org/has space").ok());
  EXPECT_FALSE(validate_dht_prefix("").ok());
}

}  // namespace
}  // namespace kwaai::p2p::petals
