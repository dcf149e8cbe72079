#include "p2p/petals/inference_protocol.hpp"

#include <cstring>

#include "p2p/petals/uids.hpp"

namespace kwaai::p2p::petals {

namespace pb = hivemind::pb;

InferenceProtocol::InferenceProtocol(SpanSchema span, ServerLimits limits)
    : span_(std::move(span)), limits_(limits) {}

Result<std::vector<InferenceAction>> InferenceProtocol::on_request(const pb::ExpertRequest& req) {
  if (state_ == State::closed) return make_error(Errc::rejected, "inference session is closed");
  if (state_ == State::failed) return make_error(Errc::rejected, "inference session has failed");
  auto r = handle(req);
  if (!r) state_ = State::failed;
  return r;
}

void InferenceProtocol::remember(const std::string& step_id) {
  if (seen_steps_.insert(step_id).second) seen_order_.push_back(step_id);
  while (seen_order_.size() > limits_.max_processed_step_ids) {
    seen_steps_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
}

Result<std::vector<InferenceAction>> InferenceProtocol::handle(const pb::ExpertRequest& req) {
  std::vector<InferenceAction> actions;
  // The loop runs "while request.tensors": a request without tensors ends the session.
  if (req.tensors_size() == 0) {
    state_ = State::closed;
    actions.emplace_back(CloseSession{});
    return actions;
  }
  if (static_cast<std::size_t>(req.tensors_size()) > limits_.max_tensors_per_request)
    return make_error(Errc::too_large, "request carries " + std::to_string(req.tensors_size()) +
                                           " tensors, limit " +
                                           std::to_string(limits_.max_tensors_per_request));
  auto meta = parse_request_metadata(hivemind::as_bytes(req.metadata()));
  if (!meta) return meta.error();

  if (state_ == State::awaiting_first) {
    // _check_uids: every uid of the chain must be one of ours. Petals then runs the requested
    // backends in chain order; we run a block range, so the chain must be consecutive and
    // increasing (what every real client route sends) and anything else is refused.
    auto chain = parse_chain_uid(req.uid(), span_.end_block - span_.start_block + 1);
    if (!chain) return chain.error();
    for (std::size_t i = 0; i < chain->size(); ++i) {
      const BlockUid& b = (*chain)[i];
      if (!span_.serves(b.to_string()))
        return make_error(Errc::rejected, "Remote peer does not serve " + b.to_string());
      if (i > 0 && b.block != (*chain)[i - 1].block + 1)
        return make_error(Errc::malformed,
                          "rpc_inference: uid chain is not consecutive and "
                          "increasing at " +
                              b.to_string());
    }
    n_blocks_ = static_cast<std::uint32_t>(chain->size());
    start_block_ = chain->front().block;
    end_block_ = chain->back().block + 1;
    if (!meta->max_length)
      return make_error(Errc::malformed, "rpc_inference: first request must carry max_length");
    if (auto s = check_max_length(limits_, *meta->max_length); !s) return s.error();
    max_length_ = static_cast<std::uint64_t>(*meta->max_length);
    if (meta->active_adapter && !meta->active_adapter->empty())
      return make_error(Errc::rejected, "adapter " + *meta->active_adapter + " not found");
    auto timeout = clamp_alloc_timeout(limits_, meta->alloc_timeout.value_or(0.0));
    if (!timeout) return timeout.error();
    args_structure_ = meta->args_structure;
    session_id_ = meta->session_id;
    // Batch = request.tensors[0].size[0], read before decoding anything.
    const auto& t0 = req.tensors(0);
    if (t0.size_size() < 1 || t0.size(0) < 1)
      return make_error(Errc::malformed, "rpc_inference: first tensor has no batch dimension");
    batch_ = static_cast<std::uint64_t>(t0.size(0));
    if (batch_ > limits_.max_batch_size)
      return make_error(Errc::too_large, "batch " + std::to_string(batch_) +
                                             " exceeds max_batch_size " +
                                             std::to_string(limits_.max_batch_size));
    actions.emplace_back(AllocateCache{start_block_, end_block_, batch_, max_length_, *timeout});
    state_ = State::running;
  }

  if (meta->step_id && seen_steps_.count(*meta->step_id)) {
    actions.emplace_back(SkipDuplicate{*meta->step_id});
    return actions;
  }
  auto step = decode_step(req, *meta);
  if (!step) return step.error();
  const std::uint64_t new_tokens = static_cast<std::uint64_t>(step->hidden_states.shape[1]);
  if (meta->start_from_position) {
    const auto pos = static_cast<std::uint64_t>(*meta->start_from_position);
    // Petals means to assert this (its check is a no-op); a position past the cache would
    // read never-written K/V, so it is refused here.
    if (pos > prefix_length_)
      return make_error(Errc::rejected, "start_from_position " + std::to_string(pos) +
                                            " is beyond the cached prefix " +
                                            std::to_string(prefix_length_));
    prefix_length_ = pos;
  }
  if (auto s = check_positions(prefix_length_, new_tokens, max_length_); !s) return s.error();
  if (auto s = check_task_size(limits_, batch_, new_tokens); !s) return s.error();
  step->start_from_position = prefix_length_;
  step->start_block = start_block_;
  step->end_block = end_block_;
  step->pushed = meta->pushed;
  prefix_length_ += new_tokens;
  if (meta->step_id) remember(*meta->step_id);
  actions.emplace_back(std::move(*step));
  return actions;
}

Result<RunStep> InferenceProtocol::decode_step(const pb::ExpertRequest& req,
                                               const RequestMetadata& meta) {
  // args_structure of the first request applies to the whole session (handler.py); a later
  // request's own one is used only if the session had none.
  const auto& structure = args_structure_ ? args_structure_ : meta.args_structure;
  auto layout = resolve_args_structure(structure, static_cast<std::size_t>(req.tensors_size()));
  if (!layout) return layout.error();
  if (layout->args.size() < 3 || !layout->args[0] || !layout->args[1] || !layout->args[2])
    return make_error(Errc::malformed,
                      "rpc_inference: expected (hidden_states, prompts, hypo_ids) tensors");

  // Decode bounds from the limits: no tensor may exceed what a valid step could need.
  const std::uint64_t h = span_.hidden_size;
  hivemind::DeserializeLimits hl;
  hl.max_elements = static_cast<std::size_t>(batch_ * limits_.max_batch_size * h);
  hl.max_dims = 4;

  auto hidden = hivemind::deserialize_tensor(req.tensors(static_cast<int>(*layout->args[0])), hl);
  if (!hidden) return hidden.error();
  if (!hivemind::dtype_is_float(hidden->dtype) || hidden->shape.size() != 3 ||
      hidden->shape[2] != static_cast<std::int64_t>(h))
    return make_error(Errc::malformed,
                      "hidden_states must be float [batch, tokens, " + std::to_string(h) + "]");
  if (static_cast<std::uint64_t>(hidden->shape[0]) != batch_)
    return make_error(Errc::rejected, "hidden_states batch " + std::to_string(hidden->shape[0]) +
                                          " differs from the allocated batch " +
                                          std::to_string(batch_));
  RunStep step;
  step.hidden_states = std::move(*hidden);
  step.step_id = meta.step_id;

  hivemind::DeserializeLimits pl;
  pl.max_elements = static_cast<std::size_t>(n_blocks_ * batch_ * max_length_ * h);
  pl.max_dims = 4;
  auto prompts = hivemind::deserialize_tensor(req.tensors(static_cast<int>(*layout->args[1])), pl);
  if (!prompts) return prompts.error();
  if (prompts->numel() != 0) {
    const auto& s = prompts->shape;
    if (!hivemind::dtype_is_float(prompts->dtype) || s.size() != 4 ||
        s[0] != static_cast<std::int64_t>(n_blocks_) ||
        (s[1] != 1 && s[1] != static_cast<std::int64_t>(batch_)) ||
        static_cast<std::uint64_t>(s[2]) > max_length_ || s[3] != static_cast<std::int64_t>(h))
      return make_error(Errc::malformed, "prompts must be [" + std::to_string(n_blocks_) +
                                             ", batch|1, prefix, " + std::to_string(h) + "]");
    step.prompts = std::move(*prompts);
  }

  hivemind::DeserializeLimits il;
  il.max_elements = static_cast<std::size_t>(batch_);
  il.max_dims = 1;
  auto hypo = hivemind::deserialize_tensor(req.tensors(static_cast<int>(*layout->args[2])), il);
  if (!hypo) return hypo.error();
  if (hypo->dtype != DType::int64) return make_error(Errc::malformed, "hypo_ids must be int64");
  if (hypo->numel() != 0) {
    if (hypo->shape.size() != 1 || static_cast<std::uint64_t>(hypo->shape[0]) != batch_)
      return make_error(Errc::malformed, "hypo_ids must be [batch]");
    for (std::size_t i = 0; i < hypo->numel(); ++i) {
      std::int64_t v;
      std::memcpy(&v, hypo->data.data() + 8 * i, 8);
      if (v < 0 || static_cast<std::uint64_t>(v) >= batch_)
        return make_error(Errc::malformed, "hypo_ids entry out of range: " + std::to_string(v));
    }
    step.hypo_ids = std::move(*hypo);
  }
  return step;
}

}  // namespace kwaai::p2p::petals
