// The client's reading of rpc_info's inference_schema, against the server-side encoder of
// p2p/petals (byte-exact with Petals' rpc_info, tested there against real vectors).
#include <gtest/gtest.h>

#include "cli/client/server_session.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/rpc_messages.hpp"

namespace kwaai::client {
namespace {

namespace hm = kwaai::p2p::hivemind;
namespace petals = kwaai::p2p::petals;

hm::Bytes info_bytes(hm::DType dtype, hm::CompressionType compression) {
  petals::SpanSchema span;
  span.dht_prefix = "m-hf";
  span.start_block = 0;
  span.end_block = 3;
  span.hidden_size = 64;
  span.dtype = dtype;
  span.compression = compression;
  hm::pb::ExpertUID uid;
  uid.set_uid("m-hf.0");
  auto info = petals::build_rpc_info_response(uid, petals::RpcInfo{}, span);
  EXPECT_TRUE(info) << info.error().what();
  const std::string& s = info->serialized_info();
  return hm::Bytes(s.begin(), s.end());
}

TEST(ClientWireFormat, InferenceSchemaGivesTheHiddenStatesDtypeAndCompression) {
  auto bf = parse_inference_format(info_bytes(hm::DType::bfloat16, hm::pb::NONE));
  ASSERT_TRUE(bf) << bf.error().to_string();
  EXPECT_EQ(bf->dtype, hm::DType::bfloat16);
  EXPECT_EQ(bf->compression, hm::pb::NONE);
  auto f16 = parse_inference_format(info_bytes(hm::DType::float16, hm::pb::FLOAT16));
  ASSERT_TRUE(f16);
  EXPECT_EQ(f16->dtype, hm::DType::float16);
  EXPECT_EQ(f16->compression, hm::pb::FLOAT16);
}

TEST(ClientWireFormat, MalformedInfoIsAnErrorNotACrash) {
  EXPECT_FALSE(parse_inference_format({}));
  // The health monitor's form (no uid) has no schema.
  petals::SpanSchema span{"m-hf", 0, 3, 64};
  auto health = petals::build_rpc_info_response(hm::pb::ExpertUID{}, petals::RpcInfo{}, span);
  ASSERT_TRUE(health);
  const std::string& s = health->serialized_info();
  EXPECT_FALSE(parse_inference_format(hm::Bytes(s.begin(), s.end())));
  // A schema whose descriptor names an integer dtype.
  hm::Value::Map m;
  m.emplace_back(hm::Value::str("inference_schema"),
                 hm::Value::tuple({hm::Value::tuple({petals::batch_tensor_descriptor(
                                       {-1, -1, 64}, hm::DType::int64, hm::pb::NONE)}),
                                   hm::Value::map({})}));
  auto bytes = hm::msgpack_encode(hm::Value::map(std::move(m)));
  ASSERT_TRUE(bytes);
  EXPECT_FALSE(parse_inference_format(*bytes));
  const hm::Bytes junk{0xc1, 0x00, 0xff};
  EXPECT_FALSE(parse_inference_format(junk));
}

}  // namespace
}  // namespace kwaai::client
