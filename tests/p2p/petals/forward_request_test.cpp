// rpc_forward request validation: the vector's unary and streamed requests decode; every
// malformed or oversized variant is refused with an error.
#include <gtest/gtest.h>

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/petals/forward_request.hpp"
#include "petals_vectors.hpp"

namespace kwaai::p2p::petals {
namespace {

using namespace testing;
namespace pb = hivemind::pb;

pb::ExpertRequest forward_vector() {
  const json v = load_vectors("petals_rpc.json");  // kept alive: the loop refers into it
  for (const auto& e : v["entries"])
    if (e["name"] == "rpc_forward request (unary)")
      return *hivemind::parse_message<pb::ExpertRequest>(hex(e["bytes_hex"]));
  throw std::runtime_error("no forward entry");
}

const SpanSchema kSpan{"stories260K-hf", 0, 5, 64, DType::float32, pb::NONE};

TEST(PetalsForwardRequest, VectorRequestDecodesUnaryAndStreamed) {
  const auto req = forward_vector();
  auto in = decode_forward_request(req, kSpan, ServerLimits::petals_defaults());
  ASSERT_TRUE(in.ok()) << in.error().what();
  EXPECT_EQ(in->start_block, 1u);
  EXPECT_EQ(in->end_block, 4u);
  EXPECT_EQ(in->hidden_states.shape, (std::vector<std::int64_t>{1, 17, 64}));
  EXPECT_FALSE(in->prompts.has_value());
  auto whole = assemble_stream_request(split_stream_request(req, 2048));
  ASSERT_TRUE(whole.ok());
  auto streamed = decode_forward_request(*whole, kSpan, ServerLimits::petals_defaults());
  ASSERT_TRUE(streamed.ok());
  EXPECT_EQ(streamed->hidden_states.data, in->hidden_states.data);
}

TEST(PetalsForwardRequest, SubSpanChainDecodesItsRangeAndGapsAreRefused) {
  auto with_uid = [](const std::string& uid) {
    pb::ExpertRequest r = forward_vector();
    r.set_uid(uid);
    return decode_forward_request(r, kSpan, ServerLimits::petals_defaults());
  };
  auto sub = with_uid("stories260K-hf.3 stories260K-hf.4");
  ASSERT_TRUE(sub.ok()) << sub.error().what();
  EXPECT_EQ(sub->start_block, 3u);
  EXPECT_EQ(sub->end_block, 5u);
  auto one = with_uid("stories260K-hf.0");
  ASSERT_TRUE(one.ok()) << one.error().what();
  EXPECT_EQ(one->start_block, 0u);
  EXPECT_EQ(one->end_block, 1u);
  for (const std::string uid :
       {"stories260K-hf.4 stories260K-hf.3", "stories260K-hf.0 stories260K-hf.2",
        "stories260K-hf.1 stories260K-hf.1"}) {
    SCOPED_TRACE(uid);
    auto bad = with_uid(uid);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("not consecutive"), std::string::npos)
        << bad.error().message;
  }
}

TEST(PetalsForwardRequest, RejectsBadRequests) {
  const auto good = forward_vector();
  ServerLimits small = ServerLimits::petals_defaults();
  small.max_batch_size = 16;  // 1 × 17 tokens is too many
  EXPECT_FALSE(decode_forward_request(good, kSpan, small).ok());
  SpanSchema narrow = kSpan;
  narrow.end_block = 3;
  EXPECT_FALSE(decode_forward_request(good, narrow, ServerLimits::petals_defaults()).ok());
  auto with = [&](auto edit) {
    pb::ExpertRequest r = good;
    edit(r);
    return decode_forward_request(r, kSpan, ServerLimits::petals_defaults()).ok();
  };
  EXPECT_FALSE(with([](pb::ExpertRequest& r) { r.set_uid("stories260K-hf.1 stories260K-hf.3"); }));
  EXPECT_FALSE(with([](pb::ExpertRequest& r) { r.set_uid(""); }));
  EXPECT_FALSE(with([](pb::ExpertRequest& r) { r.mutable_tensors()->RemoveLast(); }));
  EXPECT_FALSE(with([](pb::ExpertRequest& r) { r.set_metadata("\x93"); }));
  EXPECT_FALSE(with([](pb::ExpertRequest& r) {
    r.set_metadata(
        hivemind::to_string(client_forward_metadata(std::string("org/lora"), 2).encode()));
  }));
  EXPECT_FALSE(with([](pb::ExpertRequest& r) {
    *r.mutable_tensors(0) = *hivemind::serialize_tensor(
        HostTensor::from_floats({1, 2, 32}, std::vector<float>(64, 0.f)), pb::NONE);
  }));
  EXPECT_FALSE(with([](pb::ExpertRequest& r) {  // prompts for 2 blocks on a 3-block chain
    *r.mutable_tensors(1) = *hivemind::serialize_tensor(
        HostTensor::from_floats({2, 1, 1, 64}, std::vector<float>(128, 0.f)), pb::NONE);
  }));
  EXPECT_TRUE(with([](pb::ExpertRequest& r) {  // real prompts of the right shape are fine
    *r.mutable_tensors(1) = *hivemind::serialize_tensor(
        HostTensor::from_floats({3, 1, 2, 64}, std::vector<float>(384, 0.f)), pb::NONE);
  }));
}

}  // namespace
}  // namespace kwaai::p2p::petals
