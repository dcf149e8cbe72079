// TransformerConnectionHandler messages against petals_rpc.json: every entry decoded, and
// re-encoded byte for byte by our client- or server-side builders.
#include <gtest/gtest.h>

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/hivemind/framing.hpp"
#include "p2p/petals/limits.hpp"
#include "p2p/petals/rpc_messages.hpp"
#include "p2p/petals/uids.hpp"
#include "petals_vectors.hpp"

namespace kwaai::p2p::petals {
namespace {

using namespace testing;
namespace pb = hivemind::pb;
using hivemind::parse_message;
using hivemind::serialize_message;
using hivemind::to_hex;

const json& rpc() {
  static const json v = load_vectors("petals_rpc.json");
  return v;
}

const json& entry(const std::string& name) {
  for (const auto& e : rpc()["entries"])
    if (e["name"] == name) return e;
  throw std::runtime_error("no vector entry " + name);
}

SpanSchema stories_span(std::uint32_t start = 1, std::uint32_t end = 4) {
  return SpanSchema{"stories260K-hf", start, end, 64, DType::float32, pb::NONE};
}

template <class M>
M parse(const json& e) {
  auto m = parse_message<M>(hex(e["bytes_hex"]));
  if (!m) throw std::runtime_error("unparseable vector message");
  return *m;
}

HostTensor tensor_of(const pb::Tensor& t) {
  auto h = hivemind::deserialize_tensor(t);
  if (!h) throw std::runtime_error(h.error().what());
  return *h;
}

// A request as Petals' client assembles it: uid chain, tensors in `compression` (int64 stays
// NONE), metadata.
pb::ExpertRequest client_request(const std::string& uid, const std::vector<HostTensor>& tensors,
                                 CompressionType compression, const RequestMetadata& meta) {
  pb::ExpertRequest r;
  r.set_uid(uid);
  for (const auto& t : tensors) {
    const auto c = hivemind::dtype_is_float(t.dtype) ? compression : pb::NONE;
    *r.add_tensors() = *hivemind::serialize_tensor(t, c);
  }
  r.set_metadata(hivemind::to_string(meta.encode()));
  return r;
}

HostTensor dummy(DType d) {
  HostTensor t;
  t.dtype = d;
  t.shape = {0};
  return t;
}

TEST(PetalsRpcInfo, ResponsesMatchPetalsForBlockAndEmptyUid) {
  const SpanSchema span = stories_span(0, 5);
  const RpcInfo info{"2.3.0.dev2", false, 16384};
  auto req = parse<pb::ExpertUID>(entry("rpc_info request, block uid"));
  EXPECT_EQ(req.uid(), block_uid("stories260K-hf", 0));
  auto resp = build_rpc_info_response(req, info, span);
  ASSERT_TRUE(resp.ok()) << resp.error().what();
  EXPECT_EQ(to_hex(serialize_message(*resp)), entry("rpc_info response (uid given)")["bytes_hex"]);
  auto empty = parse<pb::ExpertUID>(entry("rpc_info request, empty uid"));
  auto resp2 = build_rpc_info_response(empty, info, span);
  ASSERT_TRUE(resp2.ok());
  EXPECT_EQ(to_hex(serialize_message(*resp2)), entry("rpc_info response (empty uid)")["bytes_hex"]);
  pb::ExpertUID other;
  other.set_uid("stories260K-hf.5");
  EXPECT_FALSE(build_rpc_info_response(other, info, span).ok());
  other.set_uid("other-hf.0");
  EXPECT_FALSE(build_rpc_info_response(other, info, span).ok());
}

TEST(PetalsRpcMessages, InferenceRequestsReencodeAsAClientSendsThem) {
  const std::string uid = rpc()["span_uid"];
  struct Case {
    const char* name;
    CompressionType compression;
    std::optional<std::int64_t> max_length;
    std::int64_t start;
  };
  for (const Case c :
       {Case{"rpc_inference step 1 (prefill 17 tokens)", pb::NONE, 128, 0},
        Case{"rpc_inference step 2 (decode 1 token)", pb::NONE, std::nullopt, 17},
        Case{"rpc_inference step 1 under a FLOAT16 server schema", pb::FLOAT16, 128, 0}}) {
    SCOPED_TRACE(c.name);
    const json& e = entry(c.name);
    auto req = parse<pb::ExpertRequest>(e);
    auto meta = parse_request_metadata(hivemind::as_bytes(req.metadata()));
    ASSERT_TRUE(meta.ok()) << meta.error().what();
    EXPECT_EQ(to_hex(meta->encode()), e["decoded"]["metadata"]["$bytes"].get<std::string>());
    auto want = typed_value(e["metadata_decoded"]);
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(Value::map(meta->entries), *want);
    EXPECT_EQ(meta->max_length, c.max_length);
    EXPECT_EQ(meta->start_from_position, std::optional<std::int64_t>(c.start));
    ASSERT_TRUE(meta->session_id && meta->step_id);
    ClientStepMetadata cm{*meta->session_id, *meta->step_id, c.max_length,
                          std::nullopt,      c.start,        3};
    const RequestMetadata built = client_inference_metadata(cm);
    EXPECT_EQ(to_hex(built.encode()), to_hex(meta->encode()));
    auto layout = resolve_args_structure(meta->args_structure, req.tensors_size());
    ASSERT_TRUE(layout.ok());
    ASSERT_EQ(layout->args.size(), 3u);
    // Re-encode with the original float32 values (FLOAT16 is lossy, so take them from step 1).
    HostTensor hidden = tensor_of(req.tensors(0));
    if (c.compression == pb::FLOAT16)
      hidden = tensor_of(
          parse<pb::ExpertRequest>(entry("rpc_inference step 1 (prefill 17 tokens)")).tensors(0));
    auto again = client_request(uid, {hidden, dummy(DType::float32), dummy(DType::int64)},
                                c.compression, built);
    EXPECT_EQ(to_hex(serialize_message(again)), e["bytes_hex"].get<std::string>());
    if (e.contains("stream_frame_hex"))
      EXPECT_EQ(to_hex(hivemind::encode_stream_frame(hivemind::FrameMarker::message,
                                                     serialize_message(again))),
                e["stream_frame_hex"].get<std::string>());
  }
}

TEST(PetalsRpcMessages, StepAndForwardResponsesReencodeAsAServerSendsThem) {
  const SpanSchema span = stories_span();
  for (const char* name :
       {"rpc_inference step 1 response", "rpc_inference step 2 response", "rpc_forward response"}) {
    SCOPED_TRACE(name);
    const json& e = entry(name);
    auto resp = parse<pb::ExpertResponse>(e);
    ASSERT_EQ(resp.tensors_size(), 1);
    auto built = build_step_response(tensor_of(resp.tensors(0)), span);
    ASSERT_TRUE(built.ok());
    EXPECT_EQ(to_hex(serialize_message(*built)), e["bytes_hex"].get<std::string>());
    auto fwd = build_forward_response(tensor_of(resp.tensors(0)), span, RequestMetadata{});
    ASSERT_TRUE(fwd.ok());
    EXPECT_EQ(serialize_message(*fwd), serialize_message(*built));
    if (e.contains("stream_frame_hex"))
      EXPECT_EQ(to_hex(hivemind::encode_stream_frame(hivemind::FrameMarker::message,
                                                     serialize_message(*built))),
                e["stream_frame_hex"].get<std::string>());
  }
  // A bf16 server casts float32 outputs (raw 2-byte bf16 on the wire).
  SpanSchema bf = span;
  bf.dtype = DType::bfloat16;
  auto out = build_step_response(HostTensor::from_floats({1, 1, 2}, {1.0f, -2.5f}), bf);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->tensors(0).dtype(), "bfloat16");
  EXPECT_EQ(to_hex(hivemind::as_bytes(out->tensors(0).buffer())), "803f20c0");
  // output_compression overrides the schema for forward (one entry only).
  RequestMetadata m;
  ASSERT_TRUE(m.set("output_compression", Value::array({Value::integer(pb::FLOAT16)})).ok());
  auto f16 = build_forward_response(HostTensor::from_floats({1, 1, 2}, {1.0f, 2.0f}), span, m);
  ASSERT_TRUE(f16.ok());
  EXPECT_EQ(f16->tensors(0).compression(), pb::FLOAT16);
  ASSERT_TRUE(
      m.set("output_compression", Value::array({Value::integer(0), Value::integer(0)})).ok());
  EXPECT_FALSE(build_forward_response(HostTensor::from_floats({1}, {1.0f}), span, m).ok());
}

TEST(PetalsRpcMessages, ForwardRequestAndStreamPartsMatchPetals) {
  const json& e = entry("rpc_forward request (unary)");
  auto req = parse<pb::ExpertRequest>(e);
  auto meta = parse_request_metadata(hivemind::as_bytes(req.metadata()));
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->points, 0.0);
  EXPECT_FALSE(meta->active_adapter.has_value());
  EXPECT_EQ(to_hex(client_forward_metadata(std::nullopt, 2).encode()), to_hex(meta->encode()));
  auto again = client_request(rpc()["span_uid"], {tensor_of(req.tensors(0)), dummy(DType::float32)},
                              pb::NONE, client_forward_metadata(std::nullopt, 2));
  EXPECT_EQ(to_hex(serialize_message(again)), e["bytes_hex"].get<std::string>());

  const json& s =
      entry("rpc_forward_stream requests (tensors split at 2048 bytes for illustration)");
  auto parts = split_stream_request(req, 2048);
  ASSERT_EQ(parts.size(), s["messages"].size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    SCOPED_TRACE(i);
    const auto bytes = serialize_message(parts[i]);
    EXPECT_EQ(to_hex(bytes), s["messages"][i]["bytes_hex"].get<std::string>());
    const std::string frame =
        to_hex(hivemind::encode_stream_frame(hivemind::FrameMarker::message, bytes));
    EXPECT_EQ(frame.rfind(s["messages"][i]["stream_frame_hex_prefix"].get<std::string>(), 0), 0u);
  }
  auto whole = assemble_stream_request(parts);
  ASSERT_TRUE(whole.ok()) << whole.error().what();
  EXPECT_EQ(serialize_message(*whole), serialize_message(req));
  // Responses split the same way and regroup.
  auto resp = parse<pb::ExpertResponse>(entry("rpc_forward response"));
  EXPECT_EQ(split_stream_response(resp, 2048).size(), 3u);
  // Refusals: no messages, differing uids, too many parts.
  EXPECT_FALSE(assemble_stream_request({}).ok());
  auto mixed = parts;
  mixed[1].set_uid("stories260K-hf.1");
  EXPECT_FALSE(assemble_stream_request(mixed).ok());
  EXPECT_FALSE(assemble_stream_request(parts, 2).ok());
}

TEST(PetalsRpcMessages, PushRequestMatchesHandlerPushOutputs) {
  auto step = parse<pb::ExpertRequest>(entry("rpc_inference step 2 (decode 1 token)"));
  auto meta = parse_request_metadata(hivemind::as_bytes(step.metadata()));
  ASSERT_TRUE(meta.ok());
  EXPECT_FALSE(build_push_request(step, *meta, step.tensors(0), "stories260K-hf").ok());
  ASSERT_TRUE(meta->set("next_servers",
                        Value::array({Value::tuple(
                            {Value::str("12D3KooWJbA3mQ6GvUqQBvY5JSpUq2yWprBpkfEfT8GNvGxEvvPf"),
                             Value::str("11111111-2222-4333-8444-555555555555"), Value::integer(4),
                             Value::integer(5)})}))
                  .ok());
  auto out = parse<pb::ExpertResponse>(entry("rpc_inference step 2 response"));
  auto push = build_push_request(step, *meta, out.tensors(0), "stories260K-hf");
  ASSERT_TRUE(push.ok()) << push.error().what();
  EXPECT_EQ(to_hex(serialize_message(*push)), entry("rpc_push request")["bytes_hex"]);
  auto pm = parse_request_metadata(hivemind::as_bytes(push->metadata()));
  ASSERT_TRUE(pm.ok());
  EXPECT_TRUE(pm->pushed);
  EXPECT_EQ(pm->session_id, std::optional<std::string>("11111111-2222-4333-8444-555555555555"));
  EXPECT_TRUE(pm->next_servers && pm->next_servers->empty());
  EXPECT_EQ(serialize_message(pb::ExpertResponse{}).size(), 0u);  // rpc_push reply
  EXPECT_EQ(entry("rpc_push response")["length"], 0);
}

TEST(PetalsRpcMessages, NextServersMetadataDecodesAndReencodes) {
  const json& e = entry("metadata with next_servers (Petals 2.2.0 clients)");
  auto meta = parse_request_metadata(hex(e["bytes_hex"]));
  ASSERT_TRUE(meta.ok()) << meta.error().what();
  ASSERT_TRUE(meta->next_servers);
  ASSERT_EQ(meta->next_servers->size(), 1u);
  EXPECT_EQ(meta->next_servers->front(),
            (NextServer{"12D3KooWJbA3mQ6GvUqQBvY5JSpUq2yWprBpkfEfT8GNvGxEvvPf",
                        "11111111-2222-4333-8444-555555555555", 4, 5}));
  EXPECT_EQ(to_hex(meta->encode()), e["bytes_hex"].get<std::string>());
  auto want = typed_value(e["input"]);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Value::map(meta->entries), *want);
}

TEST(PetalsRpcMessages, ErrorAndCloseFramesMatchPetals) {
  const json& e = entry("stream error frame");
  auto err = check_positions(0, 200, 128);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().message, e["input"]["message"].get<std::string>());
  EXPECT_EQ(to_hex(hivemind::encode_error_frame(err.error().message)), e["bytes_hex"]);
  const json& close = entry("rpc_inference close message");
  EXPECT_EQ(to_hex(hivemind::encode_stream_frame(hivemind::FrameMarker::message,
                                                 serialize_message(pb::ExpertRequest{}))),
            close["stream_frame_hex"]);
  EXPECT_EQ(to_hex(hivemind::end_of_stream_frame()), close["end_of_stream_frame_hex"]);
}

TEST(PetalsMetadata, RejectsWrongTypesPerKey) {
  auto with = [](const char* key, Value v) {
    return metadata_from_value(Value::map({{Value::str(key), std::move(v)}}));
  };
  EXPECT_FALSE(with("max_length", Value::float64(128)).ok());
  EXPECT_FALSE(with("max_length", Value::str("128")).ok());
  EXPECT_FALSE(with("session_id", Value::integer(1)).ok());
  EXPECT_FALSE(with("step_id", Value::bin({1})).ok());
  EXPECT_FALSE(with("points", Value::str("0")).ok());
  EXPECT_FALSE(with("active_adapter", Value::integer(0)).ok());
  EXPECT_FALSE(with("alloc_timeout", Value::float64(-1)).ok());
  EXPECT_FALSE(with("alloc_timeout", Value::float64(INFINITY)).ok());
  EXPECT_FALSE(with("start_from_position", Value::integer(-1)).ok());
  EXPECT_FALSE(with("next_servers", Value::str("x")).ok());
  EXPECT_FALSE(with("next_servers", Value::array({Value::tuple({Value::str("a")})})).ok());
  EXPECT_FALSE(with("pushed", Value::integer(1)).ok());
  EXPECT_FALSE(with("output_compression", Value::array({Value::integer(99)})).ok());
  EXPECT_FALSE(metadata_from_value(Value::array({})).ok());
  EXPECT_FALSE(parse_request_metadata(Bytes{0x81}).ok());  // truncated map
  // Accepted forms: int points, None ids, unknown keys carried along.
  auto ok = metadata_from_value(Value::map({{Value::str("points"), Value::integer(3)},
                                            {Value::str("session_id"), Value::nil()},
                                            {Value::str("x-extra"), Value::integer(1)}}));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->points, 3.0);
  EXPECT_EQ(ok->entries.size(), 3u);
  EXPECT_TRUE(parse_request_metadata(Bytes{}).ok());
}

TEST(PetalsMetadata, ArgsStructureResolvesLikeUnpackArgsKwargs) {
  auto none = resolve_args_structure(std::nullopt, 3);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->args.size(), 3u);
  auto pos = resolve_args_structure(positional_args_structure(3), 3);
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(pos->args[2], std::optional<std::size_t>(2));
  // Shared tensors and non-tensor leaves.
  const Bytes t0{'_', '_', 'T', '0'};
  auto mixed = resolve_args_structure(
      Value::tuple({Value::tuple({Value::bin(t0), Value::integer(5), Value::bin(t0)}),
                    Value::map({{Value::str("k"), Value::bin({'_', '_', 'T', '1'})}})}),
      2);
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(mixed->args[0], std::optional<std::size_t>(0));
  EXPECT_FALSE(mixed->args[1].has_value());
  EXPECT_EQ(mixed->args[2], std::optional<std::size_t>(0));
  EXPECT_FALSE(resolve_args_structure(positional_args_structure(3), 2).ok());  // __T2 missing
  EXPECT_FALSE(resolve_args_structure(Value::tuple({Value::tuple({})}), 0).ok());
  EXPECT_FALSE(resolve_args_structure(Value::tuple({Value::map({}), Value::map({})}), 0).ok());
  EXPECT_FALSE(
      resolve_args_structure(
          Value::tuple({Value::tuple({Value::bin({'_', '_', 'T', 'x'})}), Value::map({})}), 1)
          .ok());
  EXPECT_FALSE(
      resolve_args_structure(
          Value::tuple({Value::tuple({Value::bin(t0)}),
                        Value::map({{Value::str("k"), Value::bin({'_', '_', 'T', '9'})}})}),
          1)
          .ok());
}

TEST(PetalsLimits, DefaultsAndChecksFollowPetals) {
  const auto mha = ServerLimits::petals_defaults(1);
  EXPECT_EQ(mha.inference_max_length, 2048u);
  EXPECT_EQ(mha.max_batch_size, 2048u);
  EXPECT_EQ(mha.max_chunk_size_bytes, 256u << 20);
  EXPECT_EQ(mha.max_alloc_timeout, 600.0);
  const auto gqa = ServerLimits::petals_defaults(8);
  EXPECT_EQ(gqa.inference_max_length, 8192u);
  EXPECT_EQ(gqa.max_batch_size, 8192u);
  EXPECT_TRUE(mha.validate().ok());
  EXPECT_TRUE(check_max_length(mha, 2048).ok());
  EXPECT_TRUE(check_max_length(mha, 0).ok());
  EXPECT_FALSE(check_max_length(mha, 2049).ok());
  EXPECT_FALSE(check_max_length(mha, -1).ok());
  EXPECT_TRUE(check_task_size(mha, 2, 1024).ok());
  EXPECT_FALSE(check_task_size(mha, 2, 1025).ok());
  EXPECT_FALSE(check_task_size(mha, UINT64_MAX, UINT64_MAX).ok());
  EXPECT_TRUE(check_positions(100, 28, 128).ok());
  EXPECT_FALSE(check_positions(100, 29, 128).ok());
  EXPECT_FALSE(check_positions(UINT64_MAX, 1, 128).ok());
  EXPECT_EQ(*clamp_alloc_timeout(mha, 1e9), 600.0);
  EXPECT_EQ(*clamp_alloc_timeout(mha, 5), 5.0);
  EXPECT_FALSE(clamp_alloc_timeout(mha, NAN).ok());
  ServerLimits bad = mha;
  bad.max_batch_size = 0;
  EXPECT_FALSE(bad.validate().ok());
}

}  // namespace
}  // namespace kwaai::p2p::petals
