// ServerInfo / ModelInfo against petals_serverinfo.json (Petals' own data_structures.py).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/coerce.hpp"
#include "petals_vectors.hpp"

namespace kwaai::p2p::petals {
namespace {

using namespace testing;

TEST(PetalsServerInfo, EveryVectorEntryEncodesByteIdentically) {
  const json v = load_vectors("petals_serverinfo.json");
  int encoded = 0;
  for (const auto& e : v["entries"]) {
    SCOPED_TRACE(e["name"].get<std::string>());
    if (!e.contains("bytes_hex")) continue;
    const ServerInfo info = info_from_fields(e["input"]);
    ASSERT_TRUE(info.validate().ok());
    auto expected_value = typed_value(e["to_tuple"]);
    ASSERT_TRUE(expected_value.ok());
    EXPECT_EQ(info.to_value(), *expected_value) << info.to_value().debug_string();
    EXPECT_EQ(hivemind::to_hex(info.encode()), e["bytes_hex"].get<std::string>());
    // And back: the decoded record is the same ServerInfo, so re-encoding is stable.
    auto back = ServerInfo::decode(hex(e["bytes_hex"]));
    ASSERT_TRUE(back.ok()) << back.error().what();
    EXPECT_EQ(*back, info);
    ++encoded;
  }
  EXPECT_EQ(encoded, 6);
}

TEST(PetalsServerInfo, ConstructorRejectsWhatPydanticRejects) {
  const json v = load_vectors("petals_serverinfo.json");
  int rejected = 0;
  for (const auto& e : v["entries"]) {
    if (e.value("accepted", true)) continue;
    SCOPED_TRACE(e["name"].get<std::string>());
    const json& in = e["input"];
    // The state/throughput pair as it would reach from_tuple.
    auto tp = typed_value(in["throughput"]);
    ASSERT_TRUE(tp.ok());
    const Value tuple = Value::tuple(
        {Value::integer(static_cast<int>(state_from_name(in["state"]))), *tp, Value::map({})});
    auto r = ServerInfo::from_value(tuple);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::rejected);
    EXPECT_NE(r.error().message.find("throughput"), std::string::npos) << r.error().message;
    if (tp->kind() == Value::Kind::float64) {  // representable in the C++ struct: validate()
      ServerInfo info;
      info.throughput = tp->as_float();
      EXPECT_FALSE(info.validate().ok());
    }
    ++rejected;
  }
  EXPECT_EQ(rejected, 3);
}

TEST(PetalsServerInfo, FromTupleMatchesEveryPetalsCase) {
  const json v = load_vectors("petals_serverinfo.json");
  int n = 0;
  for (const auto& c : v["from_tuple_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    auto r = ServerInfo::decode(hex(c["bytes_hex"]));
    if (c["accepted"].get<bool>()) {
      ASSERT_TRUE(r.ok()) << r.error().what();
      EXPECT_EQ(*r, info_from_fields(c["decoded_fields"]));
    } else {
      ASSERT_FALSE(r.ok());
      // Every refusal is one Petals' reader skips (it catches TypeError/ValueError).
      EXPECT_TRUE(c.value("petals_reader_skips_entry", false));
      EXPECT_EQ(r.error().code, Errc::rejected) << r.error().what();
    }
    ++n;
  }
  EXPECT_EQ(n, 35);
}

TEST(PetalsServerInfo, ExtraKeysNamedStateOrNonStrKeysAreRefused) {
  // ServerInfo(state=..., **{"state": ...}) is a TypeError in Python; so is a bytes keyword.
  auto dup = ServerInfo::from_value(
      Value::tuple({Value::integer(2), Value::float64(1.0),
                    Value::map({{Value::str("state"), Value::integer(1)}})}));
  EXPECT_FALSE(dup.ok());
  auto bin_key =
      ServerInfo::from_value(Value::tuple({Value::integer(2), Value::float64(1.0),
                                           Value::map({{Value::bin({'x'}), Value::integer(1)}})}));
  EXPECT_FALSE(bin_key.ok());
  // State compares by equality: True == 1 and 2.0 == 2 are members, 2.5 is not.
  auto t = ServerInfo::from_value(Value::tuple({Value::boolean(true), Value::float64(1.0)}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->state, ServerState::joining);
  auto f = ServerInfo::from_value(Value::tuple({Value::float64(2.0), Value::float64(1.0)}));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->state, ServerState::online);
  EXPECT_FALSE(
      ServerInfo::from_value(Value::tuple({Value::float64(2.5), Value::float64(1.0)})).ok());
}

TEST(PetalsServerInfo, NextPingsAcceptsPairSequencesAndCoercesKeys) {
  auto r = ServerInfo::from_value(Value::tuple(
      {Value::integer(2), Value::float64(1.0),
       Value::map({{Value::str("next_pings"),
                    Value::array({Value::array({Value::str("QmA"), Value::float64(0.5)}),
                                  Value::array({Value::integer(7), Value::float64(1.5)}),
                                  Value::array({Value::str("QmA"), Value::float64(2.0)})})}})}));
  ASSERT_TRUE(r.ok()) << r.error().what();
  ASSERT_TRUE(r->next_pings);
  ASSERT_EQ(r->next_pings->size(), 2u);
  EXPECT_EQ((*r->next_pings)[0], (std::pair<std::string, double>{"QmA", 2.0}));
  EXPECT_EQ((*r->next_pings)[1], (std::pair<std::string, double>{"7", 1.5}));
}

TEST(PetalsServerInfo, CoercionsFollowPydantic) {
  EXPECT_EQ(python_float_repr(1.0), "1.0");
  EXPECT_EQ(python_float_repr(181.8), "181.8");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(0.00001), "1e-05");
  EXPECT_EQ(python_float_repr(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(*coerce_str(Value::boolean(true)), "True");
  EXPECT_EQ(*coerce_str(Value::float64(3.0)), "3.0");
  EXPECT_FALSE(coerce_str(Value::bin({0xff, 0xfe})).has_value());
  EXPECT_FALSE(coerce_str(Value::nil()).has_value());
  EXPECT_EQ(coerce_bool(Value::str("YES")), std::optional<bool>(true));
  EXPECT_EQ(coerce_bool(Value::bin({'o', 'f', 'f'})), std::optional<bool>(false));
  EXPECT_EQ(coerce_bool(Value::float64(1.0)), std::optional<bool>(true));
  EXPECT_FALSE(coerce_bool(Value::integer(2)).has_value());
  EXPECT_FALSE(coerce_bool(Value::str("maybe")).has_value());
}

TEST(PetalsServerInfo, RandomInfosRoundTrip) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1e6);
  for (int k = 0; k < 200; ++k) {
    ServerInfo i;
    i.state = static_cast<ServerState>(rng() % 3);
    i.throughput = u(rng);
    if (rng() % 2) i.start_block = rng() % 100;
    if (rng() % 2) i.end_block = rng();
    if (rng() % 2) i.public_name = "name" + std::to_string(rng() % 1000);
    if (rng() % 2) i.inference_rps = u(rng);
    if (rng() % 2) i.using_relay = rng() % 2;
    if (rng() % 2) i.cache_tokens_left = rng() % 100000;
    i.adapters_as_list = rng() % 2;
    for (std::uint64_t a = rng() % 3; a > 0; --a) i.adapters.push_back("org/a" + std::to_string(a));
    if (rng() % 2) {
      i.next_pings.emplace();
      for (std::uint64_t p = rng() % 3; p > 0; --p)
        i.next_pings->emplace_back("Qm" + std::to_string(p), p == 2 ? INFINITY : u(rng));
    }
    auto back = ServerInfo::decode(i.encode());
    ASSERT_TRUE(back.ok()) << back.error().what();
    EXPECT_EQ(*back, i);
  }
}

TEST(PetalsModelInfo, RegistryValueMatchesPetals) {
  const json v = load_vectors("petals_serverinfo.json");
  for (const auto& e : v["model_info"]) {
    SCOPED_TRACE(e["name"].get<std::string>());
    if (e.contains("bytes_hex")) {
      ModelInfo m;
      m.num_blocks = e["input"]["num_blocks"].get<std::uint64_t>();
      m.repository = e["input"]["repository"].get<std::string>();
      EXPECT_EQ(hivemind::to_hex(m.encode()), e["bytes_hex"].get<std::string>());
      auto back = hivemind::msgpack_decode(m.encode());
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(*ModelInfo::from_value(*back), m);
      continue;
    }
    auto in = typed_value(e["input"]);
    ASSERT_TRUE(in.ok());
    auto r = ModelInfo::from_value(*in);
    EXPECT_EQ(r.ok(), e["accepted"].get<bool>());
    if (r.ok()) {
      auto want = typed_value(e["decoded"]);
      ASSERT_TRUE(want.ok());
      EXPECT_EQ(r->to_value(), *want);
    }
  }
}

}  // namespace
}  // namespace kwaai::p2p::petals
