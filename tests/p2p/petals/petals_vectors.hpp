// Helpers for the Petals vector tests: typed-JSON fields of petals_serverinfo.json → ServerInfo.
#pragma once

#include "p2p/petals/server_info.hpp"
#include "tests/p2p/hivemind/vectors.hpp"

namespace kwaai::p2p::petals::testing {

using hivemind::testing::hex;
using hivemind::testing::json;
using hivemind::testing::load_vectors;
using hivemind::testing::typed_float;
using hivemind::testing::typed_value;

inline ServerState state_from_name(const std::string& s) {
  if (s == "ONLINE") return ServerState::online;
  if (s == "JOINING") return ServerState::joining;
  if (s == "OFFLINE") return ServerState::offline;
  throw std::runtime_error("bad state name " + s);
}

// Builds the ServerInfo a Python constructor call (`input`) or a from_tuple result
// (`decoded_fields`) describes.
inline ServerInfo info_from_fields(const json& f) {
  ServerInfo i;
  i.state = state_from_name(f.at("state").get<std::string>());
  i.throughput = typed_float(f.at("throughput"));
  auto has = [&](const char* k) { return f.contains(k) && !f[k].is_null(); };
  if (has("start_block")) i.start_block = f["start_block"].get<std::uint64_t>();
  if (has("end_block")) i.end_block = f["end_block"].get<std::uint64_t>();
  if (has("cache_tokens_left")) i.cache_tokens_left = f["cache_tokens_left"].get<std::uint64_t>();
  if (has("public_name")) i.public_name = f["public_name"].get<std::string>();
  if (has("version")) i.version = f["version"].get<std::string>();
  if (has("torch_dtype")) i.torch_dtype = f["torch_dtype"].get<std::string>();
  if (has("quant_type")) i.quant_type = f["quant_type"].get<std::string>();
  if (has("network_rps")) i.network_rps = typed_float(f["network_rps"]);
  if (has("forward_rps")) i.forward_rps = typed_float(f["forward_rps"]);
  if (has("inference_rps")) i.inference_rps = typed_float(f["inference_rps"]);
  if (has("using_relay")) i.using_relay = f["using_relay"].get<bool>();
  if (has("adapters")) {
    const json& a = f["adapters"];
    i.adapters_as_list = a.is_array();
    for (const auto& x : a.is_array() ? a : a.at("$tuple"))
      i.adapters.push_back(x.get<std::string>());
  }
  if (has("next_pings")) {
    i.next_pings.emplace();
    for (const auto& kv : f["next_pings"].at("$map"))
      i.next_pings->emplace_back(kv[0].get<std::string>(), typed_float(kv[1]));
  }
  return i;
}

}  // namespace kwaai::p2p::petals::testing
