#include "p2p/petals/forward_request.hpp"

#include "p2p/petals/uids.hpp"

namespace kwaai::p2p::petals {

Result<ForwardInputs> decode_forward_request(const hivemind::pb::ExpertRequest& request,
                                             const SpanSchema& span, const ServerLimits& limits) {
  auto chain = parse_chain_uid(request.uid(), span.end_block - span.start_block + 1);
  if (!chain) return chain.error();
  for (std::size_t i = 0; i < chain->size(); ++i) {
    const BlockUid& b = (*chain)[i];
    if (!span.serves(b.to_string()))
      return make_error(Errc::rejected, "Remote peer does not serve " + b.to_string());
    if (i > 0 && b.block != (*chain)[i - 1].block + 1)
      return make_error(Errc::malformed, "forward: uid chain is not consecutive");
  }
  if (static_cast<std::size_t>(request.tensors_size()) > limits.max_tensors_per_request)
    return make_error(Errc::too_large, "forward: too many tensors");
  auto meta = parse_request_metadata(hivemind::as_bytes(request.metadata()));
  if (!meta) return meta.error();
  if (meta->active_adapter && !meta->active_adapter->empty())
    return make_error(Errc::rejected, "adapter " + *meta->active_adapter + " not found");
  auto layout = resolve_args_structure(meta->args_structure,
                                       static_cast<std::size_t>(request.tensors_size()));
  if (!layout) return layout.error();
  if (layout->args.size() < 2 || !layout->args[0] || !layout->args[1])
    return make_error(Errc::malformed, "forward: expected (hidden_states, prompts) tensors");

  const std::uint64_t h = span.hidden_size;
  const auto n_blocks = static_cast<std::uint64_t>(chain->size());
  hivemind::DeserializeLimits hl;
  hl.max_elements = static_cast<std::size_t>(limits.max_batch_size * h);  // batch × seq bounded
  hl.max_dims = 3;
  auto hidden =
      hivemind::deserialize_tensor(request.tensors(static_cast<int>(*layout->args[0])), hl);
  if (!hidden) return hidden.error();
  const auto& s = hidden->shape;
  if (!hivemind::dtype_is_float(hidden->dtype) || s.size() != 3 || s[0] < 1 || s[1] < 0 ||
      s[2] != static_cast<std::int64_t>(h))
    return make_error(Errc::malformed, "forward: hidden_states must be float [batch, seq, " +
                                           std::to_string(h) + "]");
  const auto batch = static_cast<std::uint64_t>(s[0]);
  const auto seq = static_cast<std::uint64_t>(s[1]);
  if (auto st = check_task_size(limits, batch, seq); !st) return st.error();

  ForwardInputs out;
  out.start_block = chain->front().block;
  out.end_block = chain->back().block + 1;
  hivemind::DeserializeLimits pl;
  pl.max_elements = static_cast<std::size_t>(n_blocks * batch * seq * h);
  pl.max_dims = 4;
  auto prompts =
      hivemind::deserialize_tensor(request.tensors(static_cast<int>(*layout->args[1])), pl);
  if (!prompts) return prompts.error();
  if (prompts->numel() != 0) {
    const auto& p = prompts->shape;
    if (!hivemind::dtype_is_float(prompts->dtype) || p.size() != 4 ||
        p[0] != static_cast<std::int64_t>(n_blocks) ||
        (p[1] != 1 && p[1] != static_cast<std::int64_t>(batch)) || p[2] < 0 ||
        static_cast<std::uint64_t>(p[2]) > seq || p[3] != static_cast<std::int64_t>(h))
      return make_error(Errc::malformed, "forward: prompts must be [" + std::to_string(n_blocks) +
                                             ", batch|1, prefix <= seq, " + std::to_string(h) +
                                             "]");
    out.prompts = std::move(*prompts);
  }
  out.hidden_states = std::move(*hidden);
  out.metadata = std::move(*meta);
  return out;
}

}  // namespace kwaai::p2p::petals
