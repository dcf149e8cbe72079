// Routing table (k-buckets, split rule, replacements, nearest queries) and local storage
// (expiration rules, dictionaries, cache, bounds) semantics.
#include <random>
#include <set>

#include "p2p/hivemind/routing_table.hpp"
#include "p2p/hivemind/storage.hpp"
#include "vectors.hpp"

namespace kwaai::p2p::hivemind {
namespace {

Bytes peer_for(int i) {
  return to_bytes("peer-" + std::to_string(i));
}

DHTID random_id(std::mt19937_64& rng) {
  DHTID::Raw r;
  for (auto& c : r) c = static_cast<std::uint8_t>(rng());
  return DHTID::from_random(r);
}

TEST(HivemindRoutingTable, NearestMatchesBruteForceAndExcludes) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const DHTID own = random_id(rng);
  RoutingTable t(own);
  std::vector<DHTID> present;
  for (int i = 0; i < 500; ++i) {
    DHTID id = random_id(rng);
    auto r = t.add_or_update(id, peer_for(i), 1.0);
    if (r.outcome == RoutingTable::AddOutcome::added) present.push_back(id);
  }
  EXPECT_EQ(t.size(), present.size());
  EXPECT_GT(t.bucket_count(), 1u);
  for (int q = 0; q < 20; ++q) {
    DHTID query = random_id(rng);
    std::optional<DHTID> exclude;
    if (q % 2) exclude = present[rng() % present.size()];
    auto got = t.nearest(query, 20, exclude);
    std::vector<DHTID> expect;
    for (const auto& id : present)
      if (!exclude || id != *exclude) expect.push_back(id);
    sort_by_distance(expect, query);
    expect.resize(std::min<std::size_t>(20, expect.size()));
    ASSERT_EQ(got.size(), expect.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].node_id, expect[i]);
  }
}

TEST(HivemindRoutingTable, SplitsOnlyOwnBucketOrDepthNotMultipleOfModulo) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const DHTID own = random_id(rng);
  RoutingTable t(own, {.bucket_size = 4, .depth_modulo = 5, .max_replacements = 3});
  for (int i = 0; i < 3000; ++i) t.add_or_update(random_id(rng), peer_for(i), 1.0);
  // Bucket ranges tile the id space; every non-own bucket that stopped splitting sits at a depth
  // that is a multiple of depth_modulo (the only depth where a full far bucket may not split).
  int own_buckets = 0;
  for (const auto& b : t.buckets()) {
    EXPECT_LE(b.nodes.size(), 4u);
    EXPECT_LE(b.replacements.size(), 3u);
    if (b.covers(own)) {
      ++own_buckets;
    } else if (b.nodes.size() == 4 && !b.replacements.empty()) {
      EXPECT_EQ(b.depth % 5, 0);
    }
    for (const auto& e : b.nodes) EXPECT_TRUE(b.covers(e.node_id));
  }
  EXPECT_EQ(own_buckets, 1);
}

TEST(HivemindRoutingTable, FullBucketGivesPingCandidateAndDeadNodeIsReplaced) {
  // Own id in the upper half; depth_modulo 1 so that a full far bucket never splits.
  DHTID::Raw hi{};
  hi[0] = 0x80;
  RoutingTable t(DHTID(hi), {.bucket_size = 2, .depth_modulo = 1, .max_replacements = 2});
  auto id = [](int i) {
    DHTID::Raw r{};
    r[19] = static_cast<std::uint8_t>(i);
    return DHTID(r);
  };
  EXPECT_EQ(t.add_or_update(id(1), peer_for(1), 1).outcome, RoutingTable::AddOutcome::added);
  EXPECT_EQ(t.add_or_update(id(2), peer_for(2), 2).outcome, RoutingTable::AddOutcome::added);
  auto r = t.add_or_update(id(3), peer_for(3), 3);  // splits the root (own bucket), then full
  EXPECT_EQ(r.outcome, RoutingTable::AddOutcome::replacement);
  ASSERT_TRUE(r.ping_candidate.has_value());
  EXPECT_EQ(r.ping_candidate->node_id, id(1));  // least recently seen
  auto r2 = t.add_or_update(id(4), peer_for(4), 4);
  ASSERT_TRUE(r2.ping_candidate.has_value());
  EXPECT_EQ(r2.ping_candidate->node_id, id(2));  // 1 already awaits its ping
  t.on_ping_result(id(1), false, 5);  // dead: replaced by the most recent replacement (4)
  EXPECT_FALSE(t.contains(id(1)));
  EXPECT_TRUE(t.contains(id(4)));
  EXPECT_FALSE(t.contains(id(3)));
  t.on_ping_result(id(2), true, 6);
  EXPECT_TRUE(t.contains(id(2)));
  EXPECT_EQ(t.add_or_update(t.own_id(), peer_for(9), 7).outcome,
            RoutingTable::AddOutcome::rejected);
  // A peer id that reappears with a new node id replaces the stale entry.
  DHTID::Raw upper = hi;
  upper[19] = 5;  // lands in the own (non-full) bucket
  EXPECT_EQ(t.add_or_update(DHTID(upper), peer_for(2), 8).outcome, RoutingTable::AddOutcome::added);
  EXPECT_FALSE(t.contains(id(2)));
  EXPECT_EQ(t.node_of(peer_for(2)), DHTID(upper));
}

TEST(HivemindStorage, RegularValuesNeedStrictlyLaterExpiration) {
  double now = 100;
  DHTLocalStorage s([&] { return now; });
  const DHTID k = DHTID::from_key_str("k");
  EXPECT_TRUE(s.store(k, to_bytes("a"), 200));
  EXPECT_FALSE(s.store(k, to_bytes("b"), 200));  // equal expiration rejected
  EXPECT_FALSE(s.store(k, to_bytes("b"), 150));  // older rejected
  EXPECT_TRUE(s.store(k, to_bytes("c"), 300));
  EXPECT_FALSE(s.store(DHTID::from_key_str("x"), to_bytes("old"), 99));  // already expired
  auto r = s.get(k);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(to_string(r->value), "c");
  now = 301;
  EXPECT_FALSE(s.get(k).has_value());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.bytes(), 0u);
}

TEST(HivemindStorage, SubkeysFollowHivemindDictionaryRules) {
  double now = 100;
  DHTLocalStorage s([&] { return now; });
  const DHTID k = DHTID::from_key_str("k");
  EXPECT_TRUE(s.store(k, to_bytes("regular"), 150));
  EXPECT_FALSE(s.store_subkey(k, Value::str("a"), to_bytes("1"), 140));  // regular is newer
  EXPECT_TRUE(s.store_subkey(k, Value::str("a"), to_bytes("1"), 160));   // replaces the regular
  EXPECT_TRUE(s.store_subkey(k, Value::integer(7), to_bytes("2"), 170));
  EXPECT_FALSE(s.store_subkey(k, Value::str("a"), to_bytes("x"), 160));   // equal: rejected
  EXPECT_TRUE(s.store_subkey(k, Value::str("a"), to_bytes("3"), 165));    // later: in place
  EXPECT_FALSE(s.store_subkey(k, Value::array({}), to_bytes("4"), 180));  // unhashable
  auto r = s.get(k);
  ASSERT_TRUE(r && r->is_dictionary);
  EXPECT_EQ(r->expiration_time, 170);
  ASSERT_EQ(r->dictionary.items.size(), 2u);
  EXPECT_EQ(r->dictionary.items[0].subkey, Value::str("a"));  // insertion order kept
  EXPECT_EQ(to_string(r->dictionary.items[0].value), "3");
  now = 166;  // "a" expired, 7 alive
  r = s.get(k);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->dictionary.items.size(), 1u);
  EXPECT_EQ(r->dictionary.items[0].subkey, Value::integer(7));
  EXPECT_TRUE(s.store(k, to_bytes("newer regular"), 200));  // a later regular value wins
  EXPECT_FALSE(s.get(k)->is_dictionary);
}

TEST(HivemindStorage, BoundsOnRecordsBytesOriginsAndHorizon) {
  double now = 0;
  StorageLimits lim{.max_records = 3,
                    .max_bytes = 1000,
                    .max_bytes_per_origin = 400,
                    .max_expiration_horizon_s = 60};
  DHTLocalStorage s([&] { return now; }, lim);
  const Bytes alice = to_bytes("alice"), bob = to_bytes("bob");
  EXPECT_FALSE(s.store(DHTID::from_key_str("far"), to_bytes("x"), 61));  // beyond horizon
  EXPECT_TRUE(s.store(DHTID::from_key_str("a1"), Bytes(200, 1), 10, alice));
  EXPECT_FALSE(s.store(DHTID::from_key_str("a2"), Bytes(200, 1), 10, alice));  // alice's quota
  EXPECT_TRUE(s.store(DHTID::from_key_str("b1"), Bytes(200, 1), 20, bob));
  EXPECT_TRUE(s.store(DHTID::from_key_str("b2"), Bytes(10, 1), 20, bob));
  EXPECT_FALSE(s.store(DHTID::from_key_str("b3"), Bytes(10, 1), 20, bob));  // max_records
  EXPECT_LE(s.bytes(), lim.max_bytes);
  now = 11;  // a1 expired: room again once purged on demand
  EXPECT_TRUE(s.store(DHTID::from_key_str("a2"), Bytes(200, 1), 30, alice));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_LE(s.bytes_of_origin(alice), lim.max_bytes_per_origin);
  now = 100;
  s.purge_expired();
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.bytes(), 0u);
  EXPECT_EQ(s.bytes_of_origin(bob), 0u);
}

TEST(HivemindStorage, RandomOperationsKeepAccountingConsistent) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  double now = 0;
  DHTLocalStorage s([&] { return now; }, {.max_records = 50,
                                          .max_bytes = 20000,
                                          .max_bytes_per_origin = 8000,
                                          .max_expiration_horizon_s = 100});
  for (int i = 0; i < 5000; ++i) {
    now += 0.05;
    DHTID k = DHTID::from_key_str("k" + std::to_string(rng() % 80));
    Bytes origin = to_bytes("o" + std::to_string(rng() % 4));
    Bytes value(rng() % 300, 7);
    double exp = now + static_cast<double>(rng() % 120) - 10;
    if (rng() % 2)
      s.store(k, value, exp, origin);
    else
      s.store_subkey(k, Value::integer(static_cast<std::int64_t>(rng() % 5)), value, exp, origin);
    ASSERT_LE(s.size(), 50u);
    ASSERT_LE(s.bytes(), 20000u);
    for (int o = 0; o < 4; ++o)
      ASSERT_LE(s.bytes_of_origin(to_bytes("o" + std::to_string(o))), 8000u);
  }
  now += 1000;
  s.purge_expired();
  EXPECT_EQ(s.bytes(), 0u);
}

}  // namespace
}  // namespace kwaai::p2p::hivemind
