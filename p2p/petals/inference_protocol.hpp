// The server side of one rpc_inference stream as an IO-free state machine: the network loop
// feeds it each decoded ExpertRequest (from the client stream or an rpc_push for this session)
// and executes the actions it returns — allocate the KV cache once, run a step over the span,
// close. It applies Petals' checks (handler.py / block_functions.iterate_rpc_inference) so the
// caller sees a clear error to send as the stream's error frame.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "p2p/hivemind/proto/runtime.pb.h"
#include "p2p/hivemind/tensor.hpp"
#include "p2p/petals/limits.hpp"
#include "p2p/petals/metadata.hpp"
#include "p2p/petals/rpc_messages.hpp"

namespace kwaai::p2p::petals {

struct AllocateCache {
  // The requested chain's blocks [start_block, end_block): any consecutive run of the span
  // (Petals' _check_uids + requested_backends), not necessarily the whole span.
  std::uint32_t start_block = 0;
  std::uint32_t end_block = 0;
  std::uint64_t batch = 0;
  std::uint64_t max_length = 0;
  double alloc_timeout = 0;  // already clamped to max_alloc_timeout
};

struct RunStep {
  std::uint32_t start_block = 0;  // the session's blocks [start_block, end_block)
  std::uint32_t end_block = 0;
  HostTensor hidden_states;               // [batch, new_tokens, hidden], as sent (caller casts)
  std::optional<HostTensor> prompts;      // [n_blocks, batch|1, prefix, hidden]; nullopt = dummy
  std::optional<HostTensor> hypo_ids;     // int64 [batch]; nullopt = dummy
  std::uint64_t start_from_position = 0;  // prefix length the step continues from
  std::optional<std::string> step_id;
  bool pushed = false;
};

struct CloseSession {};

// A step that was already processed (late push or late direct copy): no response is sent.
struct SkipDuplicate {
  std::string step_id;
};

using InferenceAction = std::variant<AllocateCache, RunStep, CloseSession, SkipDuplicate>;

class InferenceProtocol {
 public:
  InferenceProtocol(SpanSchema span, ServerLimits limits);

  // One request → the actions in order (first request: AllocateCache then RunStep). After an
  // error or CloseSession every further call fails.
  Result<std::vector<InferenceAction>> on_request(const hivemind::pb::ExpertRequest& request);

  bool closed() const { return state_ == State::closed || state_ == State::failed; }
  std::uint64_t prefix_length() const { return prefix_length_; }
  std::uint64_t max_length() const { return max_length_; }
  std::uint64_t batch() const { return batch_; }
  // The session's requested blocks (valid once the first request was accepted).
  std::uint32_t start_block() const { return start_block_; }
  std::uint32_t end_block() const { return end_block_; }
  const std::optional<std::string>& session_id() const { return session_id_; }

 private:
  enum class State { awaiting_first, running, closed, failed };
  Result<std::vector<InferenceAction>> handle(const hivemind::pb::ExpertRequest& request);
  Result<RunStep> decode_step(const hivemind::pb::ExpertRequest& request,
                              const RequestMetadata& meta);
  void remember(const std::string& step_id);

  SpanSchema span_;
  ServerLimits limits_;
  State state_ = State::awaiting_first;
  std::uint64_t max_length_ = 0;
  std::uint64_t batch_ = 0;
  std::uint64_t prefix_length_ = 0;
  std::uint32_t n_blocks_ = 0;
  std::uint32_t start_block_ = 0, end_block_ = 0;
  std::optional<Value> args_structure_;  // from the first request, for the whole session
  std::optional<std::string> session_id_;
  std::unordered_set<std::string> seen_steps_;
  std::deque<std::string> seen_order_;  // bounded memory of step ids
};

}  // namespace kwaai::p2p::petals
