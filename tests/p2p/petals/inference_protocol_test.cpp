// The rpc_inference state machine: the good path replayed from petals_rpc.json, then every
// rejection it is meant to make.
#include <gtest/gtest.h>

#include <functional>

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/petals/inference_protocol.hpp"
#include "p2p/petals/uids.hpp"
#include "petals_vectors.hpp"

namespace kwaai::p2p::petals {
namespace {

using namespace testing;
namespace pb = hivemind::pb;

const json& rpc() {
  static const json v = load_vectors("petals_rpc.json");
  return v;
}

pb::ExpertRequest vector_request(const std::string& name) {
  for (const auto& e : rpc()["entries"])
    if (e["name"] == name) return *hivemind::parse_message<pb::ExpertRequest>(hex(e["bytes_hex"]));
  throw std::runtime_error("no entry " + name);
}

InferenceProtocol make_protocol(ServerLimits limits = ServerLimits::petals_defaults()) {
  return InferenceProtocol(SpanSchema{"stories260K-hf", 1, 4, 64, DType::float32, pb::NONE},
                           limits);
}

HostTensor zeros(DType d, std::vector<std::int64_t> shape) {
  HostTensor t;
  t.dtype = d;
  t.shape = std::move(shape);
  t.data.assign(t.numel() * hivemind::dtype_size(d), 0);
  return t;
}

// A request built like Petals' client: (hidden, prompts, hypo_ids) + metadata.
pb::ExpertRequest step_request(std::int64_t batch, std::int64_t tokens,
                               std::optional<std::int64_t> max_length, std::int64_t start,
                               const std::string& step_id,
                               HostTensor prompts = zeros(DType::float32, {0}),
                               HostTensor hypo = zeros(DType::int64, {0}),
                               std::int64_t hidden = 64) {
  pb::ExpertRequest r;
  r.set_uid(chain_uid("stories260K-hf", 1, 4));
  for (const auto& t : {zeros(DType::float32, {batch, tokens, hidden}), prompts, hypo})
    *r.add_tensors() = *hivemind::serialize_tensor(t, pb::NONE);
  ClientStepMetadata m{"session", step_id, max_length, std::nullopt, start, 3};
  r.set_metadata(hivemind::to_string(client_inference_metadata(m).encode()));
  return r;
}

TEST(PetalsInferenceProtocol, VectorSessionYieldsAllocateStepsAndClose) {
  auto p = make_protocol();
  auto a1 = p.on_request(vector_request("rpc_inference step 1 (prefill 17 tokens)"));
  ASSERT_TRUE(a1.ok()) << a1.error().what();
  ASSERT_EQ(a1->size(), 2u);
  const auto& alloc = std::get<AllocateCache>((*a1)[0]);
  EXPECT_EQ(alloc.batch, 1u);
  EXPECT_EQ(alloc.max_length, 128u);
  EXPECT_EQ(alloc.alloc_timeout, 0.0);
  const auto& s1 = std::get<RunStep>((*a1)[1]);
  EXPECT_EQ(s1.hidden_states.shape, (std::vector<std::int64_t>{1, 17, 64}));
  EXPECT_FALSE(s1.prompts.has_value());
  EXPECT_FALSE(s1.hypo_ids.has_value());
  EXPECT_EQ(s1.start_from_position, 0u);
  EXPECT_EQ(p.prefix_length(), 17u);
  EXPECT_EQ(p.session_id(), std::optional<std::string>("5f1e6c1a-3c5c-4d55-9a4e-2b7e8f8d9c01"));

  auto a2 = p.on_request(vector_request("rpc_inference step 2 (decode 1 token)"));
  ASSERT_TRUE(a2.ok()) << a2.error().what();
  ASSERT_EQ(a2->size(), 1u);
  const auto& s2 = std::get<RunStep>((*a2)[0]);
  EXPECT_EQ(s2.hidden_states.shape, (std::vector<std::int64_t>{1, 1, 64}));
  EXPECT_EQ(s2.start_from_position, 17u);
  EXPECT_EQ(p.prefix_length(), 18u);

  // The same step again (a late push copy): skipped, no response.
  auto dup = p.on_request(vector_request("rpc_inference step 2 (decode 1 token)"));
  ASSERT_TRUE(dup.ok());
  ASSERT_TRUE(std::holds_alternative<SkipDuplicate>(dup->at(0)));

  auto a3 = p.on_request(vector_request("rpc_inference close message"));
  ASSERT_TRUE(a3.ok());
  ASSERT_TRUE(std::holds_alternative<CloseSession>(a3->at(0)));
  EXPECT_TRUE(p.closed());
  EXPECT_FALSE(p.on_request(step_request(1, 1, std::nullopt, 18, "late")).ok());
}

// The server holds [1, 4); a client route starting or ending inside it asks for a sub-span.
TEST(PetalsInferenceProtocol, SubSpanChainExposesItsBlockRange) {
  struct Case {
    std::uint32_t begin, end;
  };
  for (const Case c : {Case{1, 4}, Case{2, 4}, Case{1, 2}, Case{3, 4}, Case{2, 3}}) {
    SCOPED_TRACE("chain [" + std::to_string(c.begin) + ", " + std::to_string(c.end) + ")");
    auto p = make_protocol();
    auto first = step_request(1, 3, 16, 0, "a");
    first.set_uid(chain_uid("stories260K-hf", c.begin, c.end));
    auto a = p.on_request(first);
    ASSERT_TRUE(a.ok()) << a.error().what();
    const auto& alloc = std::get<AllocateCache>(a->at(0));
    EXPECT_EQ(alloc.start_block, c.begin);
    EXPECT_EQ(alloc.end_block, c.end);
    EXPECT_EQ(std::get<RunStep>(a->at(1)).start_block, c.begin);
    EXPECT_EQ(std::get<RunStep>(a->at(1)).end_block, c.end);
    EXPECT_EQ(p.start_block(), c.begin);
    EXPECT_EQ(p.end_block(), c.end);
    // Later steps keep the session's range (their uid is not re-read, as in Petals).
    auto b = p.on_request(step_request(1, 1, std::nullopt, 3, "b"));
    ASSERT_TRUE(b.ok()) << b.error().what();
    EXPECT_EQ(std::get<RunStep>(b->at(0)).start_block, c.begin);
    EXPECT_EQ(std::get<RunStep>(b->at(0)).end_block, c.end);
  }
}

TEST(PetalsInferenceProtocol, ChainsWithGapsOrOutOfOrderAreRefused) {
  for (const std::string uid :
       {"stories260K-hf.1 stories260K-hf.3", "stories260K-hf.3 stories260K-hf.2",
        "stories260K-hf.2 stories260K-hf.2",
        "stories260K-hf.1 stories260K-hf.2 stories260K-hf.1"}) {
    SCOPED_TRACE(uid);
    auto p = make_protocol();
    auto r = step_request(1, 1, 16, 0, "a");
    r.set_uid(uid);
    auto a = p.on_request(r);
    ASSERT_FALSE(a.ok());
    EXPECT_NE(a.error().message.find("not consecutive"), std::string::npos) << a.error().message;
    EXPECT_TRUE(p.closed());
  }
}

TEST(PetalsInferenceProtocol, FirstRequestFloat16SchemaDecodes) {
  auto p = make_protocol();
  auto a = p.on_request(vector_request("rpc_inference step 1 under a FLOAT16 server schema"));
  ASSERT_TRUE(a.ok()) << a.error().what();
  EXPECT_EQ(std::get<RunStep>(a->at(1)).hidden_states.dtype, DType::float32);
}

TEST(PetalsInferenceProtocol, RollbackAndPromptsAndHypoIds) {
  auto p = make_protocol();
  HostTensor prompts = zeros(DType::float32, {3, 1, 4, 64});
  HostTensor hypo = zeros(DType::int64, {2});
  hypo.data[8] = 1;  // [0, 1]
  auto a = p.on_request(step_request(2, 5, 32, 0, "s1", prompts, hypo));
  ASSERT_TRUE(a.ok()) << a.error().what();
  const auto& s = std::get<RunStep>(a->at(1));
  ASSERT_TRUE(s.prompts && s.hypo_ids);
  EXPECT_EQ(p.batch(), 2u);
  // start_from_position rolls the prefix back (re-sync after a failure elsewhere).
  auto b = p.on_request(step_request(2, 2, std::nullopt, 3, "s2"));
  ASSERT_TRUE(b.ok()) << b.error().what();
  EXPECT_EQ(std::get<RunStep>(b->at(0)).start_from_position, 3u);
  EXPECT_EQ(p.prefix_length(), 5u);
  // Zero new tokens is a valid probe step.
  EXPECT_TRUE(p.on_request(step_request(2, 0, std::nullopt, 5, "s3")).ok());
}

struct Rejection {
  const char* name;
  std::function<pb::ExpertRequest()> first;  // the offending request (as the first one)
};

TEST(PetalsInferenceProtocol, RejectsBadFirstRequests) {
  ServerLimits small = ServerLimits::petals_defaults();
  small.max_batch_size = 64;
  const std::vector<Rejection> cases{
      {"no max_length", [] { return step_request(1, 1, std::nullopt, 0, "a"); }},
      {"max_length over inference_max_length", [] { return step_request(1, 1, 4096, 0, "a"); }},
      {"negative max_length", [] { return step_request(1, 1, -1, 0, "a"); }},
      {"prefill longer than max_length", [] { return step_request(1, 200, 128, 0, "a"); }},
      {"task larger than max_batch_size", [] { return step_request(2, 40, 128, 0, "a"); }},
      {"batch larger than max_batch_size", [] { return step_request(65, 1, 128, 0, "a"); }},
      {"wrong hidden size",
       [] {
         return step_request(1, 1, 128, 0, "a", zeros(DType::float32, {0}),
                             zeros(DType::int64, {0}), 32);
       }},
      {"hypo_ids not int64",
       [] {
         return step_request(1, 1, 128, 0, "a", zeros(DType::float32, {0}),
                             zeros(DType::int32, {1}));
       }},
      {"hypo_ids out of range",
       [] {
         HostTensor h = zeros(DType::int64, {1});
         h.data[0] = 1;
         return step_request(1, 1, 128, 0, "a", zeros(DType::float32, {0}), h);
       }},
      {"prompts for the wrong number of blocks",
       [] {
         return step_request(1, 1, 128, 0, "a", zeros(DType::float32, {2, 1, 4, 64}));
       }},
      {"start_from_position beyond the prefix", [] { return step_request(1, 1, 128, 5, "a"); }},
      {"uid not served",
       [] {
         auto r = step_request(1, 1, 128, 0, "a");
         r.set_uid("stories260K-hf.4");
         return r;
       }},
      {"uid of another model",
       [] {
         auto r = step_request(1, 1, 128, 0, "a");
         r.set_uid("other-hf.1");
         return r;
       }},
      {"malformed chain",
       [] {
         auto r = step_request(1, 1, 128, 0, "a");
         r.set_uid("stories260K-hf.1  stories260K-hf.2");
         return r;
       }},
      {"unknown adapter",
       [] {
         auto r = step_request(1, 1, 128, 0, "a");
         ClientStepMetadata m{"s", "a", 128, std::string("org/lora"), 0, 3};
         r.set_metadata(hivemind::to_string(client_inference_metadata(m).encode()));
         return r;
       }},
      {"undecodable metadata",
       [] {
         auto r = step_request(1, 1, 128, 0, "a");
         r.set_metadata("\xc1");
         return r;
       }},
      {"args_structure naming a missing tensor",
       [] {
         auto r = step_request(1, 1, 128, 0, "a");
         r.mutable_tensors()->RemoveLast();
         return r;
       }},
      {"too many tensors",
       [] {
         auto r = step_request(1, 1, 128, 0, "a");
         for (int i = 0; i < 20; ++i) *r.add_tensors() = r.tensors(1);
         return r;
       }},
      {"hidden states buffer shorter than its shape",
       [] {
         auto r = step_request(1, 4, 128, 0, "a");
         r.mutable_tensors(0)->mutable_buffer()->resize(8);
         return r;
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto p = make_protocol(small);
    auto r = p.on_request(c.first());
    ASSERT_FALSE(r.ok());
    EXPECT_FALSE(r.error().message.empty());
    EXPECT_TRUE(p.closed());  // a failed session refuses everything after
    EXPECT_FALSE(p.on_request(step_request(1, 1, 128, 0, "b")).ok());
  }
}

TEST(PetalsInferenceProtocol, RejectsBadLaterSteps) {
  {
    auto p = make_protocol();
    ASSERT_TRUE(p.on_request(step_request(1, 100, 128, 0, "a")).ok());
    auto r = p.on_request(step_request(1, 29, std::nullopt, 100, "b"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message,
              "Maximum length exceeded: prefix 100 + current 29 exceeds pre-allocated maximum 128");
  }
  {
    auto p = make_protocol();
    ASSERT_TRUE(p.on_request(step_request(1, 1, 128, 0, "a")).ok());
    EXPECT_FALSE(p.on_request(step_request(2, 1, std::nullopt, 1, "b")).ok());  // batch changed
  }
  {
    auto p = make_protocol();
    ASSERT_TRUE(p.on_request(step_request(1, 1, 128, 0, "a")).ok());
    EXPECT_FALSE(p.on_request(step_request(1, 1, std::nullopt, 2, "b")).ok());  // gap
  }
}

TEST(PetalsInferenceProtocol, StepIdMemoryIsBounded) {
  ServerLimits l = ServerLimits::petals_defaults();
  l.max_processed_step_ids = 2;
  auto p = make_protocol(l);
  ASSERT_TRUE(p.on_request(step_request(1, 0, 128, 0, "a")).ok());
  ASSERT_TRUE(p.on_request(step_request(1, 0, std::nullopt, 0, "b")).ok());
  ASSERT_TRUE(p.on_request(step_request(1, 0, std::nullopt, 0, "c")).ok());
  // "a" was forgotten, so it runs again; "c" is still remembered.
  auto again = p.on_request(step_request(1, 0, std::nullopt, 0, "a"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(std::holds_alternative<RunStep>(again->at(0)));
  auto dup = p.on_request(step_request(1, 0, std::nullopt, 0, "c"));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(std::holds_alternative<SkipDuplicate>(dup->at(0)));
}

}  // namespace
}  // namespace kwaai::p2p::petals
