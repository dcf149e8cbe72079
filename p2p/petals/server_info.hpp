// Petals' ServerInfo and ModelInfo (petals/data_structures.py, a pydantic.v1 dataclass): the DHT
// value every server stores under each block uid it serves, and the `_petals.models` registry
// entry. Encoding reproduces ServerInfo.to_tuple() byte for byte; decoding applies the same
// accept/reject/coerce rules as ServerInfo.from_tuple(), so a record Python skips is skipped here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "p2p/petals/common.hpp"

namespace kwaai::p2p::petals {

enum class ServerState : std::uint8_t { offline = 0, joining = 1, online = 2 };
const char* server_state_name(ServerState s);  // "OFFLINE" / "JOINING" / "ONLINE"

struct ServerInfo {
  ServerState state = ServerState::offline;
  double throughput = 0.0;  // RPS: finite, >= 0
  std::optional<std::uint64_t> start_block;
  std::optional<std::uint64_t> end_block;
  std::optional<std::string> public_name;
  std::optional<std::string> version;
  std::optional<double> network_rps;
  std::optional<double> forward_rps;
  std::optional<double> inference_rps;
  std::vector<std::string> adapters;
  // Python keeps whichever sequence type it was given; a list is re-sent as a msgpack array,
  // a tuple (the default `()`) as ext 0x40. Only matters for byte-exact re-encoding.
  bool adapters_as_list = false;
  std::optional<std::string> torch_dtype;
  std::optional<std::string> quant_type;
  std::optional<bool> using_relay;
  std::optional<std::uint64_t> cache_tokens_left;
  // base58 peer id -> RTT seconds (may be +inf), in insertion order.
  std::optional<std::vector<std::pair<std::string, double>>> next_pings;

  // The constructor's checks (RPS fields finite and >= 0, next_pings values >= 0).
  Status validate() const;
  // to_tuple(): ext-0x40 tuple (state, throughput, {13 fields in Petals' order, None included}).
  Value to_value() const;
  // MSGPackSerializer.dumps(to_tuple()).
  Bytes encode() const;
  // from_tuple(): tuple or array of >= 2 items; item 2 (if any) a str-keyed map of fields,
  // unknown keys ignored. Errc::rejected for anything Petals' reader would skip.
  static Result<ServerInfo> from_value(const Value& v);
  static Result<ServerInfo> decode(ByteView bytes);

  bool operator==(const ServerInfo&) const = default;
};

// ModelInfo for the `_petals.models` record (subkey = dht_prefix).
struct ModelInfo {
  std::uint64_t num_blocks = 1;  // >= 1
  std::optional<std::string> repository;

  Value to_value() const;  // {"num_blocks": int, "repository": str|None}
  Bytes encode() const;
  static Result<ModelInfo> from_value(const Value& v);  // extra keys ignored
  bool operator==(const ModelInfo&) const = default;
};

}  // namespace kwaai::p2p::petals
