// Server-side validation of rpc_forward / rpc_forward_stream requests (handler.py rpc_forward →
// block_functions.run_rpc_forward): the span check, args_structure, and the input shapes and
// task size Petals accepts, before any computation is scheduled.
#pragma once

#include <optional>

#include "p2p/hivemind/proto/runtime.pb.h"
#include "p2p/hivemind/tensor.hpp"
#include "p2p/petals/limits.hpp"
#include "p2p/petals/metadata.hpp"
#include "p2p/petals/rpc_messages.hpp"

namespace kwaai::p2p::petals {

struct ForwardInputs {
  std::uint32_t start_block = 0;  // the requested sub-span [start_block, end_block)
  std::uint32_t end_block = 0;
  HostTensor hidden_states;           // [batch, seq, hidden], float
  std::optional<HostTensor> prompts;  // [n_blocks, batch|1, prefix <= seq, hidden]; nullopt = dummy
  RequestMetadata metadata;           // output_compression etc. for build_forward_response
};

// A whole request (unary, or a stream after assemble_stream_request). The uid chain must be
// consecutive blocks of the span; batch × seq <= max_batch_size.
Result<ForwardInputs> decode_forward_request(const hivemind::pb::ExpertRequest& request,
                                             const SpanSchema& span, const ServerLimits& limits);

}  // namespace kwaai::p2p::petals
