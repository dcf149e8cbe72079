// Builders and parsers for hivemind's DHT RPC messages (dht.proto), shaped the way
// hivemind.dht.protocol.DHTProtocol fills them: keys are 20-byte DHTIDs, subkeys msgpack bytes
// (c0 = regular value, empty = a whole DictionaryDHTValue), expirations float64 DHT time.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/dht_id.hpp"
#include "p2p/hivemind/msgpack_value.hpp"
#include "p2p/hivemind/proto/dht.pb.h"

namespace kwaai::p2p::hivemind {

inline constexpr std::uint8_t kIsRegularValue = 0xc0;  // msgpack nil: subkey of a regular value
// IS_DICTIONARY is the empty subkey.

inline constexpr std::size_t kMaxDhtMessageBytes = 4u << 20;  // bounded by the unary envelope

template <class M>
Result<M> parse_message(ByteView bytes, std::size_t max_bytes = kMaxDhtMessageBytes) {
  if (bytes.size() > max_bytes) return make_error(Errc::too_large, "protobuf message too large");
  M m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return make_error(Errc::malformed, "cannot parse " + m.GetTypeName());
  return m;
}

template <class M>
Bytes serialize_message(const M& m) {
  Bytes out(m.ByteSizeLong());
  m.SerializeWithCachedSizesToArray(out.data());
  return out;
}

// NodeInfo of the sender: node id bytes, or empty in client mode (never added to tables).
pb::NodeInfo make_node_info(const std::optional<DHTID>& own_id);

pb::PingRequest make_ping_request(const std::optional<DHTID>& own_id, bool validate);
pb::PingResponse make_ping_response(const std::optional<DHTID>& own_id, double dht_time,
                                    bool available);

struct StoreItem {
  DHTID key;
  Bytes subkey;  // kIsRegularValue (c0), empty (whole dictionary), or msgpack(subkey)
  Bytes value;
  double expiration_time = 0;
  bool in_cache = false;
};
pb::StoreRequest make_store_request(const std::vector<StoreItem>& items,
                                    const std::optional<DHTID>& own_id);
// Items of a StoreRequest with hivemind's zip semantics: lists must agree in length (except
// subkeys, which truncate), otherwise an error (hivemind's AssertionError).
Result<std::vector<StoreItem>> store_items(const pb::StoreRequest& req);

pb::FindRequest make_find_request(const std::vector<DHTID>& keys,
                                  const std::optional<DHTID>& own_id);

struct FindResultView {
  pb::ResultType type = pb::NOT_FOUND;
  Bytes value;                                   // FOUND_REGULAR: value bytes
  std::optional<DictionaryDHTValue> dictionary;  // FOUND_DICTIONARY: decoded ext 0x50
  double expiration_time = 0;
  std::vector<std::pair<DHTID, Bytes>> nearest;  // (node id, peer id), nearest first
};
// Decodes one FindResult, checking aligned neighbour lists, 20-byte ids and the dictionary.
Result<FindResultView> parse_find_result(const pb::FindResult& r);

}  // namespace kwaai::p2p::hivemind
