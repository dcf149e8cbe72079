// The DHT records a Petals server writes (declare_active_modules, the `_petals.models` registry)
// as a pure plan the network layer executes with store_many, and the reader side
// (get_remote_module_infos): a FOUND_DICTIONARY value → {peer → ServerInfo} for one block,
// skipping exactly the entries Petals skips.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "p2p/hivemind/msgpack_value.hpp"
#include "p2p/petals/server_info.hpp"

namespace kwaai::p2p::petals {

// One dictionary store: key (a str DHT key), subkey (msgpack str), value bytes, absolute
// expiration.
struct DhtStore {
  std::string key;
  std::string subkey;
  Bytes value;
  double expiration_time = 0;
};

struct AnnounceParams {
  std::string dht_prefix;
  std::uint32_t start_block = 0;  // span [start_block, end_block)
  std::uint32_t end_block = 0;
  std::string peer_id_base58;        // subkey of every record
  double now = 0;                    // DHT time (get_dht_time())
  double update_period = 60;         // Server class default (the CLI passes 120)
  std::optional<double> expiration;  // --expiration; default max(2 * update_period, 3 s)
  std::optional<ModelInfo> model;    // when set and the prefix is public, refresh _petals.models
};

// The record lifetime Petals uses: expiration if given, else max(2 × update_period, 3 s).
double announce_lifetime(const AnnounceParams& p);

// ModuleAnnouncerThread's stores for one cycle: the info gets start_block/end_block of the span;
// one record per block; then (unless the state is OFFLINE or the prefix starts with "_") the
// model registry record. Errors: invalid prefix, empty span, invalid info.
Result<std::vector<DhtStore>> plan_announce(const AnnounceParams& p, ServerInfo info);

struct BlockServer {
  std::string peer_id_base58;
  Bytes peer_id;  // the decoded multihash bytes (PeerID.from_base58)
  ServerInfo info;
  double expiration_time = 0;
};

struct BlockRecord {
  std::vector<BlockServer> servers;  // in the dictionary's order
  std::vector<std::string> skipped;  // one reason per skipped entry (Petals logs a warning)
};

// Reads the value found under one block uid. A value that is not a DictionaryDHTValue gives no
// servers (Petals ignores such keys). Entries expired at `now` are dropped (hivemind's
// DictionaryDHTValue.items()); entries whose subkey is not valid base58 or whose value fails
// ServerInfo.from_tuple are skipped; with `active_adapter` set, servers lacking it are dropped.
BlockRecord read_block_record(const Value& found, double now,
                              const std::optional<std::string>& active_adapter = std::nullopt);

}  // namespace kwaai::p2p::petals
