// Petals-level bytes built from the hivemind core: runtime.proto messages of petals_rpc.json
// (ExpertUID/Info/Request/Response, their tensors and msgpack metadata) and the DHT records of
// petals_serverinfo.json (ServerInfo tuples, dictionary values as a node returns them).
#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/hivemind/proto/runtime.pb.h"
#include "p2p/hivemind/storage.hpp"
#include "p2p/hivemind/tensor.hpp"
#include "vectors.hpp"

namespace kwaai::p2p::hivemind {
namespace {

using testing::hex;
using testing::json;

void expect_msgpack_roundtrip(const std::string& bytes) {
  auto v = msgpack_decode(as_bytes(bytes));
  ASSERT_TRUE(v.ok()) << v.error().what();
  EXPECT_EQ(to_string(*msgpack_encode(*v)), bytes);
}

template <class M>
void check_tensors(const M& m, const json& decoded) {
  ASSERT_EQ(m.tensors_size(), static_cast<int>(decoded.value("tensors", json::array()).size()));
  for (int i = 0; i < m.tensors_size(); ++i) {
    auto t = deserialize_tensor(m.tensors(i));
    ASSERT_TRUE(t.ok()) << t.error().what();
    EXPECT_EQ(t->shape, decoded["tensors"][i]["size"].get<std::vector<std::int64_t>>());
  }
  if (!m.metadata().empty()) expect_msgpack_roundtrip(m.metadata());
}

TEST(HivemindPetalsMessages, RuntimeMessagesRoundTripWithTensorsAndMetadata) {
  const json v = testing::load_vectors("petals_rpc.json");
  int checked = 0;
  for (const auto& e : v["entries"]) {
    if (!e.contains("message_type")) continue;
    SCOPED_TRACE(e["name"].get<std::string>());
    const std::string type = e["message_type"].get<std::string>();
    const Bytes bytes = hex(e["bytes_hex"]);
    if (type == "ExpertUID") {
      auto m = parse_message<pb::ExpertUID>(bytes);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m->uid(), e["decoded"].value("uid", ""));
      EXPECT_EQ(serialize_message(*m), bytes);
    } else if (type == "ExpertInfo") {
      auto m = parse_message<pb::ExpertInfo>(bytes);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(serialize_message(*m), bytes);
      expect_msgpack_roundtrip(m->serialized_info());
      auto info = msgpack_decode(as_bytes(m->serialized_info()));
      ASSERT_TRUE(info.ok());
      EXPECT_NE(info->find("version"), nullptr);
    } else if (type == "ExpertRequest") {
      auto m = parse_message<pb::ExpertRequest>(bytes);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(serialize_message(*m), bytes);
      check_tensors(*m, e["decoded"]);
    } else if (type == "ExpertResponse") {
      auto m = parse_message<pb::ExpertResponse>(bytes);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(serialize_message(*m), bytes);
      check_tensors(*m, e["decoded"]);
    }
    ++checked;
  }
  EXPECT_GE(checked, 12);
}

TEST(HivemindPetalsMessages, ForwardStreamPartsRegroupIntoTheUnaryTensors) {
  const json v = testing::load_vectors("petals_rpc.json");
  const json* stream = nullptr;
  const json* unary = nullptr;
  for (const auto& e : v["entries"]) {
    if (e.contains("messages")) stream = &e;
    if (e["name"] == "rpc_forward request (unary)") unary = &e;
  }
  ASSERT_TRUE(stream && unary);
  std::vector<pb::Tensor> parts;
  for (const auto& m : (*stream)["messages"]) {
    auto req = parse_message<pb::ExpertRequest>(hex(m["bytes_hex"]));
    ASSERT_TRUE(req.ok());
    EXPECT_EQ(req->uid(), v["span_uid"].get<std::string>());  // uid repeated in every message
    for (const auto& t : req->tensors()) parts.push_back(t);
  }
  auto grouped = group_streamed_parts(parts);
  ASSERT_TRUE(grouped.ok()) << grouped.error().what();
  auto whole = parse_message<pb::ExpertRequest>(hex((*unary)["bytes_hex"]));
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(static_cast<int>(grouped->size()), whole->tensors_size());
  for (int i = 0; i < whole->tensors_size(); ++i) {
    EXPECT_EQ((*grouped)[i].buffer(), whole->tensors(i).buffer());
    EXPECT_EQ((*grouped)[i].dtype(), whole->tensors(i).dtype());
  }
}

TEST(HivemindPetalsMessages, NextServersMetadataEncodesLikePetals) {
  const json v = testing::load_vectors("petals_rpc.json");
  for (const auto& e : v["entries"]) {
    if (!e.contains("input") || !e["input"].contains("$map")) continue;
    auto value = testing::typed_value(e["input"]);
    ASSERT_TRUE(value.ok());
    EXPECT_EQ(to_hex(*msgpack_encode(*value)), e["bytes_hex"].get<std::string>());
  }
}

TEST(HivemindPetalsMessages, ServerInfoTuplesAndModelInfoEncodeLikePetals) {
  const json v = testing::load_vectors("petals_serverinfo.json");
  int n = 0;
  for (const auto& e : v["entries"]) {
    if (!e.value("accepted", true) || !e.contains("bytes_hex")) continue;
    SCOPED_TRACE(e["name"].get<std::string>());
    auto tuple = testing::typed_value(e["to_tuple"]);
    ASSERT_TRUE(tuple.ok());
    EXPECT_EQ(to_hex(*msgpack_encode(*tuple)), e["bytes_hex"].get<std::string>());
    EXPECT_EQ(*msgpack_decode(hex(e["bytes_hex"])), *tuple);
    ++n;
  }
  for (const auto& c : v["from_tuple_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    // Whatever Petals then thinks of the fields, the msgpack layer must load every case.
    auto decoded = msgpack_decode(hex(c["bytes_hex"]));
    ASSERT_TRUE(decoded.ok()) << decoded.error().what();
    EXPECT_EQ(*decoded, *testing::typed_value(c["input"]));
  }
  for (const auto& m : v["model_info"]) {
    if (!m.contains("to_dict")) continue;
    EXPECT_EQ(to_hex(*msgpack_encode(*testing::typed_value(m["to_dict"]))),
              m["bytes_hex"].get<std::string>());
  }
  EXPECT_GE(n, 5);
}

TEST(HivemindPetalsMessages, AnnouncedBlockRecordsComeBackAsPetalsReadsThem) {
  const json ex = testing::load_vectors("petals_serverinfo.json")["dht_records_example"];
  const std::string peer = ex["peer_id"].get<std::string>();
  double now = 1800000000.0;
  DHTLocalStorage storage([&] { return now; }, {.max_expiration_horizon_s = 2e8});
  for (const auto& r : ex["records"]) {
    SCOPED_TRACE(r["uid"].get<std::string>());
    const DHTID key = DHTID::from_key_str(r["uid"].get<std::string>());
    EXPECT_EQ(key.hex(), r["key_dhtid_hex"].get<std::string>());
    EXPECT_EQ(to_hex(*msgpack_encode(Value::str(peer))), r["store_subkey_hex"].get<std::string>());
    const double exp = testing::typed_float(r["expiration_time"]);
    ASSERT_TRUE(storage.store_subkey(key, Value::str(peer), hex(r["store_value_hex"]), exp));
    auto got = storage.get(key);
    ASSERT_TRUE(got && got->is_dictionary);
    EXPECT_EQ(to_hex(*msgpack_encode(got->dictionary.to_value())),
              r["rpc_find_dictionary_value_hex"].get<std::string>());
  }
}

}  // namespace
}  // namespace kwaai::p2p::hivemind
