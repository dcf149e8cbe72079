#include "p2p/petals/dht_records.hpp"

#include <algorithm>

#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/libp2p/multibase.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::p2p::petals {

double announce_lifetime(const AnnounceParams& p) {
  if (p.expiration) return *p.expiration;
  return std::max(2 * p.update_period, kMaxDhtTimeDiscrepancySeconds);
}

Result<std::vector<DhtStore>> plan_announce(const AnnounceParams& p, ServerInfo info) {
  if (auto s = validate_dht_prefix(p.dht_prefix); !s) return s.error();
  if (p.start_block >= p.end_block)
    return make_error(Errc::rejected, "announce: empty span [" + std::to_string(p.start_block) +
                                          ", " + std::to_string(p.end_block) + ")");
  if (p.peer_id_base58.empty()) return make_error(Errc::rejected, "announce: empty peer id");
  const double lifetime = announce_lifetime(p);
  if (!(lifetime > 0)) return make_error(Errc::rejected, "announce: lifetime must be positive");
  info.start_block = p.start_block;
  info.end_block = p.end_block;
  if (auto s = info.validate(); !s) return s.error();
  const double expiration = p.now + lifetime;
  const Bytes value = info.encode();
  std::vector<DhtStore> out;
  for (std::uint32_t b = p.start_block; b < p.end_block; ++b)
    out.push_back(DhtStore{block_uid(p.dht_prefix, b), p.peer_id_base58, value, expiration});
  if (p.model && info.state != ServerState::offline && p.dht_prefix.front() != '_') {
    if (p.model->num_blocks < 1) return make_error(Errc::rejected, "announce: num_blocks < 1");
    out.push_back(DhtStore{kModelsRegistryKey, p.dht_prefix, p.model->encode(), expiration});
  }
  return out;
}

BlockRecord read_block_record(const Value& found, double now,
                              const std::optional<std::string>& active_adapter) {
  BlockRecord rec;
  if (found.kind() != Value::Kind::dictionary) return rec;
  auto dict = hivemind::DictionaryDHTValue::from_value(found);
  if (!dict) {
    rec.skipped.push_back("malformed dictionary value: " + dict.error().what());
    return rec;
  }
  for (const auto& item : dict->items) {
    if (item.expiration_time < now) continue;
    // PeerID.from_base58 accepts a str of base58 characters (bytes would fail in Python's
    // base58 on the str operations, so only str subkeys are taken).
    if (item.subkey.kind() != Value::Kind::str) {
      rec.skipped.push_back("subkey is not a str: " + item.subkey.debug_string());
      continue;
    }
    const std::string& peer = item.subkey.as_str();
    auto peer_bytes = libp2p::base58btc_decode(peer);
    if (!peer_bytes) {
      rec.skipped.push_back("subkey is not base58: " + peer);
      continue;
    }
    auto value = hivemind::msgpack_decode(item.value);
    if (!value) {
      rec.skipped.push_back(peer + ": undecodable value: " + value.error().what());
      continue;
    }
    auto info = ServerInfo::from_value(*value);
    if (!info) {
      rec.skipped.push_back(peer + ": " + info.error().what());
      continue;
    }
    if (active_adapter && !active_adapter->empty() &&
        std::find(info->adapters.begin(), info->adapters.end(), *active_adapter) ==
            info->adapters.end())
      continue;
    rec.servers.push_back(BlockServer{peer, Bytes(peer_bytes->begin(), peer_bytes->end()),
                                      std::move(*info), item.expiration_time});
  }
  return rec;
}

}  // namespace kwaai::p2p::petals
