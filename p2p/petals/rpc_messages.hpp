// TransformerConnectionHandler's messages (petals/server/handler.py) as pure functions over
// runtime.proto: rpc_info request/response, step/forward responses in the server's dtype and
// compression, rpc_forward_stream splitting/reassembly, and rpc_push requests. Stream errors
// use hivemind::encode_error_frame; unary errors go in unaryResponse.error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p2p/hivemind/proto/runtime.pb.h"
#include "p2p/hivemind/tensor.hpp"
#include "p2p/petals/common.hpp"
#include "p2p/petals/metadata.hpp"

namespace kwaai::p2p::petals {

using hivemind::CompressionType;
using hivemind::DType;
using hivemind::HostTensor;

// Petals' MAX_UNARY_PAYLOAD_SIZE // 2: clients use unary rpc_forward up to this many raw input
// bytes, streams above; and DEFAULT_MAX_MSG_SIZE, the part size of streamed tensors.
inline constexpr std::size_t kMaxUnaryInputBytes = 1u << 20;
inline constexpr std::size_t kStreamPartBytes = 4u << 20;

// The span a server serves and how its tensors travel.
struct SpanSchema {
  std::string dht_prefix;
  std::uint32_t start_block = 0;  // [start_block, end_block)
  std::uint32_t end_block = 0;
  std::uint32_t hidden_size = 0;
  DType dtype = DType::float32;                      // server (outputs) dtype
  CompressionType compression = hivemind::pb::NONE;  // --compression
  bool serves(const std::string& uid) const;
};

// hivemind BatchTensorDescriptor as ext 0x51 (field order of its msgpack payload); `size`
// entries < 0 stand for None (the batch dimension).
Value batch_tensor_descriptor(const std::vector<std::int64_t>& size, DType dtype,
                              CompressionType compression);

struct RpcInfo {
  std::string version = "2.3.0.dev2";
  bool dht_client_mode = false;
  std::uint64_t cache_tokens_available = 0;
};

// rpc_info: an empty uid (health monitor) gets the 3 server keys; a served block uid adds the
// block's forward/outputs/inference schemas and keyword_names; any other uid is an error
// (Petals raises KeyError).
Result<hivemind::pb::ExpertInfo> build_rpc_info_response(const hivemind::pb::ExpertUID& request,
                                                         const RpcInfo& info,
                                                         const SpanSchema& span);

// A step or forward output: cast to the schema dtype if it is float32 (bf16/fp16 with torch's
// rounding), serialized with `compression` (raw bf16, as Petals sets USE_LEGACY_BFLOAT16=0).
Result<hivemind::pb::Tensor> serialize_output(const HostTensor& out, DType dtype,
                                              CompressionType compression);
Result<hivemind::pb::ExpertResponse> build_step_response(const HostTensor& out,
                                                         const SpanSchema& span);
// rpc_forward: compression from metadata output_compression[0] when given, else the schema's.
Result<hivemind::pb::ExpertResponse> build_forward_response(const HostTensor& out,
                                                            const SpanSchema& span,
                                                            const RequestMetadata& meta);

// rpc_forward_stream (client side): one ExpertRequest{uid, [part], metadata} per part.
std::vector<hivemind::pb::ExpertRequest> split_stream_request(
    const hivemind::pb::ExpertRequest& whole, std::size_t part_bytes = kStreamPartBytes);
// Server side: uid and metadata from the first message (all uids must match), tensors
// regrouped; at most `max_parts` messages and `max_buffer_bytes` per tensor.
Result<hivemind::pb::ExpertRequest> assemble_stream_request(
    const std::vector<hivemind::pb::ExpertRequest>& parts, std::size_t max_parts = 4096,
    std::size_t max_buffer_bytes = std::size_t{1} << 31);
// Stream responses: the output split into parts, one ExpertResponse each.
std::vector<hivemind::pb::ExpertResponse> split_stream_response(
    const hivemind::pb::ExpertResponse& whole, std::size_t part_bytes = kStreamPartBytes);

// rpc_push (handler.py _push_outputs): to next_servers[0], uid = its span, tensors = [output] +
// the step request's tensors[1:], metadata = the step's with session_id := next session,
// next_servers := the rest, pushed := True. Errors when the metadata has no next_servers.
Result<hivemind::pb::ExpertRequest> build_push_request(const hivemind::pb::ExpertRequest& step,
                                                       const RequestMetadata& meta,
                                                       const hivemind::pb::Tensor& output,
                                                       const std::string& dht_prefix);

}  // namespace kwaai::p2p::petals
