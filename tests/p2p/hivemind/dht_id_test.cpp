// DHTID.generate / XOR distance / prefix lengths against dhtid.json.
#include <random>

#include "p2p/hivemind/dht_id.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "vectors.hpp"

namespace kwaai::p2p::hivemind {
namespace {

using testing::hex;
using testing::json;

TEST(HivemindDhtId, EveryVectorKeyHashesToTheSameId) {
  const json v = testing::load_vectors("dhtid.json");
  ASSERT_GT(v["entries"].size(), 100u);
  for (const auto& e : v["entries"]) {
    SCOPED_TRACE(e["name"].get<std::string>());
    auto key = testing::typed_value(e["input"]);
    ASSERT_TRUE(key.ok()) << key.error().what();
    auto id = DHTID::from_key(*key);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id->hex(), e["bytes_hex"].get<std::string>());
    EXPECT_EQ(id->decimal(), e["int_decimal"].get<std::string>());
    // the bytes hivemind hashed are exactly what we hash
    if (key->kind() == Value::Kind::bin) {
      EXPECT_EQ(to_hex(key->as_bin()), e["hash_input_hex"].get<std::string>());
    } else {
      EXPECT_EQ(to_hex(*msgpack_encode(*key)), e["hash_input_hex"].get<std::string>());
    }
  }
}

TEST(HivemindDhtId, XorDistanceAndCommonPrefixMatchVectors) {
  const json v = testing::load_vectors("dhtid.json");
  for (const auto& x : v["xor_distance"]) {
    auto a = *DHTID::from_bytes(hex(x["a_hex"]));
    auto b = *DHTID::from_bytes(hex(x["b_hex"]));
    EXPECT_EQ((a ^ b).hex(), x["xor_distance_hex"].get<std::string>());
    EXPECT_EQ((a ^ b).decimal(), x["xor_distance_decimal"].get<std::string>());
    EXPECT_EQ(a.common_prefix_length(b), x["longest_common_prefix_bits"].get<int>());
  }
}

TEST(HivemindDhtId, NearestOrderExampleIsReproduced) {
  const json ex = testing::load_vectors("dhtid.json")["nearest_order_example"];
  const DHTID target = *DHTID::from_bytes(hex(ex["target_hex"]));
  std::vector<DHTID> ids;
  for (const auto& n : ex["nodes"])
    ids.push_back(DHTID::from_key_str(n["source"].get<std::string>()));
  std::reverse(ids.begin(), ids.end());
  sort_by_distance(ids, target);
  ASSERT_EQ(ids.size(), ex["nodes"].size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i].hex(), ex["nodes"][i]["id_hex"].get<std::string>());
    EXPECT_EQ((ids[i] ^ target).hex(), ex["nodes"][i]["distance_hex"].get<std::string>());
  }
}

TEST(HivemindDhtId, FromBytesAcceptsShortAndRejectsOversizedIds) {
  EXPECT_TRUE(DHTID::from_bytes({}).value().is_zero());  // empty NodeInfo.node_id = id 0
  Bytes one = {0x01};
  EXPECT_EQ(DHTID::from_bytes(one)->hex(), std::string(38, '0') + "01");
  Bytes padded(21, 0);
  padded[20] = 7;
  EXPECT_TRUE(DHTID::from_bytes(padded).ok());  // leading zero byte: value still < 2^160
  padded[0] = 1;
  EXPECT_FALSE(DHTID::from_bytes(padded).ok());
}

TEST(HivemindDhtId, RandomIdsHaveConsistentPrefixLengths) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 200; ++i) {
    DHTID::Raw a, b;
    for (auto& c : a) c = static_cast<std::uint8_t>(rng());
    b = a;
    int flip = static_cast<int>(rng() % 160);
    b[flip / 8] ^= static_cast<std::uint8_t>(0x80 >> (flip % 8));
    EXPECT_EQ(DHTID::from_random(a).common_prefix_length(DHTID::from_random(b)), flip);
    EXPECT_EQ(DHTID::from_random(a).common_prefix_length(DHTID::from_random(a)), 160);
  }
}

}  // namespace
}  // namespace kwaai::p2p::hivemind
