#include "p2p/hivemind/dht_server.hpp"

#include <algorithm>

#include "p2p/hivemind/msgpack_codec.hpp"

namespace kwaai::p2p::hivemind {

Result<pb::StoreResponse> handle_store(DhtServerContext& ctx, const pb::StoreRequest& req,
                                       const Bytes& origin, double now) {
  auto items = store_items(req);
  if (!items) return items.error();
  pb::StoreResponse resp;
  for (const auto& it : *items) {
    DHTLocalStorage& target = it.in_cache ? ctx.cache : ctx.storage;
    if (it.subkey.empty()) {  // IS_DICTIONARY: a whole DictionaryDHTValue
      auto decoded = msgpack_decode(it.value);
      if (!decoded) return decoded.error();
      auto dict = DictionaryDHTValue::from_value(*decoded);
      if (!dict) return dict.error();
      // hivemind iterates the dictionary's live items (expired ones are dropped when it is read)
      // and stops at the first failure: all(generator).
      bool ok = true;
      for (const auto& item : dict->items) {
        if (item.expiration_time < now) continue;
        if (!is_hashable_subkey(item.subkey))
          return make_error(Errc::malformed, "TypeError: unhashable subkey");
        if (!target.store_subkey(it.key, item.subkey, item.value, item.expiration_time, origin)) {
          ok = false;
          break;
        }
      }
      resp.add_store_ok(ok);
      continue;
    }
    if (it.subkey.size() == 1 && it.subkey[0] == kIsRegularValue) {
      resp.add_store_ok(target.store(it.key, it.value, it.expiration_time, origin));
      continue;
    }
    auto subkey = msgpack_decode(it.subkey);
    if (!subkey) return subkey.error();
    if (!is_hashable_subkey(*subkey))
      return make_error(Errc::malformed, "TypeError: unhashable subkey");
    resp.add_store_ok(target.store_subkey(it.key, *subkey, it.value, it.expiration_time, origin));
  }
  *resp.mutable_peer() = make_node_info(ctx.own_id);
  return resp;
}

Result<pb::FindResponse> handle_find(DhtServerContext& ctx, const pb::FindRequest& req) {
  auto requester = DHTID::from_bytes(as_bytes(req.peer().node_id()));
  if (!requester) return requester.error();
  pb::FindResponse resp;
  for (const auto& key_bytes : req.keys()) {
    auto key = DHTID::from_bytes(as_bytes(key_bytes));
    if (!key) return key.error();
    auto item = ctx.storage.get(*key);
    auto cached = ctx.cache.get(*key);
    if (cached && (!item || cached->expiration_time > item->expiration_time)) item = cached;
    pb::FindResult* r = resp.add_results();
    if (item && item->is_dictionary) {
      auto packed = msgpack_encode(item->dictionary.to_value());
      if (!packed) return packed.error();
      r->set_type(pb::FOUND_DICTIONARY);
      r->set_value(to_string(*packed));
      r->set_expiration_time(item->expiration_time);
    } else if (item) {
      r->set_type(pb::FOUND_REGULAR);
      r->set_value(to_string(item->value));
      r->set_expiration_time(item->expiration_time);
    }
    for (const auto& e : ctx.table.nearest(*key, ctx.bucket_size, *requester)) {
      r->add_nearest_node_ids(to_string(e.node_id.to_bytes()));
      r->add_nearest_peer_ids(to_string(e.peer_id));
    }
  }
  *resp.mutable_peer() = make_node_info(ctx.own_id);
  return resp;
}

pb::PingResponse handle_ping(const DhtServerContext& ctx, double now, bool available) {
  return make_ping_response(ctx.own_id, now, available);
}

}  // namespace kwaai::p2p::hivemind
