#include "p2p/hivemind/dht_messages.hpp"

#include "p2p/hivemind/msgpack_codec.hpp"

namespace kwaai::p2p::hivemind {

pb::NodeInfo make_node_info(const std::optional<DHTID>& own_id) {
  pb::NodeInfo n;
  if (own_id) n.set_node_id(to_string(own_id->to_bytes()));
  return n;
}

pb::PingRequest make_ping_request(const std::optional<DHTID>& own_id, bool validate) {
  pb::PingRequest r;
  *r.mutable_peer() = make_node_info(own_id);
  r.set_validate(validate);
  return r;
}

pb::PingResponse make_ping_response(const std::optional<DHTID>& own_id, double dht_time,
                                    bool available) {
  pb::PingResponse r;
  *r.mutable_peer() = make_node_info(own_id);
  r.set_dht_time(dht_time);
  r.set_available(available);
  return r;
}

pb::StoreRequest make_store_request(const std::vector<StoreItem>& items,
                                    const std::optional<DHTID>& own_id) {
  pb::StoreRequest r;
  for (const auto& it : items) {
    r.add_keys(to_string(it.key.to_bytes()));
    r.add_subkeys(to_string(it.subkey));
    r.add_values(to_string(it.value));
    r.add_expiration_time(it.expiration_time);
    r.add_in_cache(it.in_cache);
  }
  *r.mutable_peer() = make_node_info(own_id);
  return r;
}

Result<std::vector<StoreItem>> store_items(const pb::StoreRequest& req) {
  const int n = req.keys_size();
  if (req.values_size() != n || req.expiration_time_size() != n || req.in_cache_size() != n)
    return make_error(Errc::malformed, "AssertionError(): StoreRequest lists differ in length");
  const int m = std::min(n, req.subkeys_size());
  std::vector<StoreItem> items;
  items.reserve(static_cast<std::size_t>(m));
  for (int i = 0; i < m; ++i) {
    auto key = DHTID::from_bytes(as_bytes(req.keys(i)));
    if (!key) return key.error();
    items.push_back({*key, to_bytes(req.subkeys(i)), to_bytes(req.values(i)),
                     req.expiration_time(i), req.in_cache(i)});
  }
  return items;
}

pb::FindRequest make_find_request(const std::vector<DHTID>& keys,
                                  const std::optional<DHTID>& own_id) {
  pb::FindRequest r;
  for (const auto& k : keys) r.add_keys(to_string(k.to_bytes()));
  *r.mutable_peer() = make_node_info(own_id);
  return r;
}

Result<FindResultView> parse_find_result(const pb::FindResult& r) {
  FindResultView v;
  v.type = r.type();
  v.expiration_time = r.expiration_time();
  if (r.nearest_node_ids_size() != r.nearest_peer_ids_size())
    return make_error(Errc::malformed, "nearest_node_ids and nearest_peer_ids differ in length");
  for (int i = 0; i < r.nearest_node_ids_size(); ++i) {
    auto id = DHTID::from_bytes(as_bytes(r.nearest_node_ids(i)));
    if (!id) return id.error();
    v.nearest.emplace_back(*id, to_bytes(r.nearest_peer_ids(i)));
  }
  if (r.type() == pb::FOUND_REGULAR) {
    v.value = to_bytes(r.value());
  } else if (r.type() == pb::FOUND_DICTIONARY) {
    auto decoded = msgpack_decode(as_bytes(r.value()));
    if (!decoded) return decoded.error();
    auto d = DictionaryDHTValue::from_value(*decoded);
    if (!d) return d.error();
    v.dictionary = std::move(*d);
  } else if (r.type() != pb::NOT_FOUND) {
    return make_error(Errc::malformed, "unknown FindResult type");
  }
  return v;
}

}  // namespace kwaai::p2p::hivemind
