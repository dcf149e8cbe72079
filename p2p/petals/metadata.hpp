// ExpertRequest.metadata of Petals' TransformerConnectionHandler RPCs: a msgpack map whose keys
// (session_id, step_id, max_length, points, active_adapter, args_structure, alloc_timeout,
// start_from_position, next_servers, pushed, output_compression) are type-checked here the way
// the handler checks them, and args_structure — pack_args_kwargs' ((args...), {kwargs}) with
// every tensor replaced by b"__T<index>" — is resolved back to request.tensors indices.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/common.hpp"

namespace kwaai::p2p::petals {

// One hop of a server-to-server push chain: (peer_id_base58, session_id, start, end).
struct NextServer {
  std::string peer_id;
  std::string session_id;
  std::int64_t start = 0;
  std::int64_t end = 0;
  bool operator==(const NextServer&) const = default;
};

struct RequestMetadata {
  std::optional<std::string> session_id;
  std::optional<std::string> step_id;
  std::optional<std::int64_t> max_length;
  double points = 0;                          // int or float on the wire
  std::optional<std::string> active_adapter;  // None and "" mean "no adapter"
  std::optional<Value> args_structure;
  std::optional<double> alloc_timeout;
  std::optional<std::int64_t> start_from_position;
  std::optional<std::vector<NextServer>> next_servers;
  bool pushed = false;
  std::optional<std::vector<int>> output_compression;
  // The map exactly as received or built (key order is part of the bytes); encode() writes it.
  Value::Map entries;

  Bytes encode() const;
  // Sets (or replaces in place, like a Python dict) one key and re-validates it.
  Status set(const std::string& key, Value v);
};

// Empty bytes = {} (Petals: `loads(request.metadata) if request.metadata else {}`).
Result<RequestMetadata> parse_request_metadata(ByteView bytes,
                                               const hivemind::MsgpackLimits& limits = {});
Result<RequestMetadata> metadata_from_value(const Value& v);

// ((b"__T0", …, b"__T{n-1}"), {}) — what pack_args_kwargs makes for n positional tensors.
Value positional_args_structure(std::size_t n_tensors);

// The metadata a Petals client sends (key order as in inference_session.py /
// sequence_manager.get_request_metadata), for `n_tensors` positional tensors.
struct ClientStepMetadata {
  std::string session_id;
  std::string step_id;
  std::optional<std::int64_t> max_length;  // first step only
  std::optional<std::string> active_adapter;
  std::int64_t start_from_position = 0;
  std::size_t n_tensors = 3;
};
RequestMetadata client_inference_metadata(const ClientStepMetadata& m);
RequestMetadata client_forward_metadata(const std::optional<std::string>& active_adapter,
                                        std::size_t n_tensors);

// args_structure resolved against request.tensors.
struct ArgsLayout {
  // Per positional argument: the tensor index, or nullopt for a non-tensor leaf/structure.
  std::vector<std::optional<std::size_t>> args;
};
// Without args_structure the tensors are positional. Every b"__T<i>" anywhere in the structure
// must name an existing tensor; args must be a tuple/list and kwargs a map.
Result<ArgsLayout> resolve_args_structure(const std::optional<Value>& args_structure,
                                          std::size_t n_tensors);

}  // namespace kwaai::p2p::petals
