// Client algorithms of hivemind's DHTNode: beam search (traverse_dht), get with caching of the
// found value at the nearest node that lacked it, and store to the num_replicas nearest nodes.
#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/hivemind/net/dht_node.hpp"
#include "p2p/libp2p/host/event.hpp"

namespace kwaai::p2p::hivemind::net {

namespace {

// Runs the coroutines concurrently and waits until all have finished.
asio::awaitable<void> gather(asio::any_io_executor ex,
                             std::vector<std::function<asio::awaitable<void>()>> tasks) {
  struct State {
    explicit State(const asio::any_io_executor& e) : done(e) {}
    lp::Event done;
    std::size_t left = 0;
  };
  auto st = std::make_shared<State>(ex);
  st->left = tasks.size();
  for (auto& t : tasks)
    asio::co_spawn(
        ex,
        [st, t = std::move(t)]() -> asio::awaitable<void> {
          try {
            co_await t();
          } catch (const std::exception& e) {
            spdlog::warn("dht: task failed: {}", e.what());
          }
          if (--st->left == 0) st->done.notify();
        },
        asio::detached);
  while (st->left > 0) co_await st->done.wait();
}

// Keeps the fresher of two found values; dictionaries merge subkey by subkey (hivemind's
// get with latest=True over several peers).
void merge_into(std::optional<DhtValue>& acc, DhtValue v) {
  if (!acc) {
    acc = std::move(v);
    return;
  }
  if (acc->is_dictionary && v.is_dictionary) {
    for (auto& item : v.dictionary.items) {
      auto it = std::find_if(acc->dictionary.items.begin(), acc->dictionary.items.end(),
                             [&](const DictionaryItem& a) { return a.subkey == item.subkey; });
      if (it == acc->dictionary.items.end())
        acc->dictionary.items.push_back(std::move(item));
      else if (item.expiration_time > it->expiration_time)
        *it = std::move(item);
    }
    acc->dictionary.latest_expiration_time =
        std::max(acc->dictionary.latest_expiration_time, v.dictionary.latest_expiration_time);
    acc->expiration_time = std::max(acc->expiration_time, v.expiration_time);
    return;
  }
  if (v.expiration_time > acc->expiration_time) acc = std::move(v);
}

std::optional<DhtValue> from_record(const std::optional<StoredRecord>& r) {
  if (!r) return std::nullopt;
  DhtValue v;
  v.is_dictionary = r->is_dictionary;
  v.value = r->value;
  v.dictionary = r->dictionary;
  v.expiration_time = r->expiration_time;
  return v;
}

// The value as an rpc_store item (a dictionary travels whole, subkey = IS_DICTIONARY).
std::optional<StoreItem> as_store_item(const DHTID& key, const DhtValue& v, bool in_cache) {
  StoreItem item;
  item.key = key;
  item.expiration_time = v.expiration_time;
  item.in_cache = in_cache;
  if (v.is_dictionary) {
    auto enc = msgpack_encode(v.dictionary.to_value());
    if (!enc) return std::nullopt;
    item.value = std::move(*enc);
  } else {
    item.subkey = {kIsRegularValue};
    item.value = v.value;
  }
  return item;
}

}  // namespace

struct DHTNode::SearchResult {
  std::vector<RoutingEntry> nearest;  // responding nodes, nearest first
  std::optional<DhtValue> value;
  std::set<Bytes> providers;  // peers that returned a value
};

asio::awaitable<DHTNode::SearchResult> DHTNode::traverse(const DHTID& key, bool stop_at_value,
                                                         bool latest) {
  auto self = shared_from_this();
  struct State {
    explicit State(const asio::any_io_executor& e) : changed(e) {}
    lp::Event changed;
    std::map<DHTID, RoutingEntry> candidates;  // by XOR distance to the key
    std::map<DHTID, RoutingEntry> beam;        // responding nodes, by distance
    std::set<DHTID> seen;
    std::size_t in_flight = 0;
    bool done = false;
    SearchResult result;
  };
  auto st = std::make_shared<State>(host().executor());
  const std::size_t beam_size = config_.bucket_size;
  for (auto& e : table_.nearest(key, beam_size)) {
    st->seen.insert(e.node_id);
    st->candidates.emplace(e.node_id ^ key, std::move(e));
  }

  // The closest candidate that could still improve the beam, or nothing.
  auto pick = [this, st, beam_size]() -> std::optional<RoutingEntry> {
    while (!st->candidates.empty()) {
      auto it = st->candidates.begin();
      if (st->beam.size() >= beam_size && !(it->first < st->beam.rbegin()->first))
        return std::nullopt;
      RoutingEntry e = std::move(it->second);
      st->candidates.erase(it);
      if (blacklisted(e.peer_id)) continue;
      return e;
    }
    return std::nullopt;
  };

  auto worker = [this, self, st, key, stop_at_value, latest, pick,
                 beam_size]() -> asio::awaitable<void> {
    while (!st->done) {
      auto next = pick();
      if (!next) {
        if (st->in_flight == 0) {
          st->done = true;
          st->changed.notify();
          break;
        }
        co_await st->changed.wait();
        continue;
      }
      auto pid = lp::PeerId::from_bytes(next->peer_id);
      if (!pid) continue;
      ++st->in_flight;
      std::vector<DHTID> keys{key};  // not inline: GCC 12 and init lists in co_await
      auto r = co_await call_find(*pid, keys);
      --st->in_flight;
      if (!r) {
        note_failure(next->peer_id);
      } else {
        note_success(next->peer_id);
        st->beam.emplace(next->node_id ^ key, *next);
        while (st->beam.size() > beam_size) st->beam.erase(std::prev(st->beam.end()));
        auto view = parse_find_result(r->results(0));
        if (view) {
          for (auto& [nid, peer] : view->nearest) {
            if (nid == own_id_ || !st->seen.insert(nid).second) continue;
            st->candidates.emplace(nid ^ key, RoutingEntry{nid, peer});
          }
          if (view->type != pb::NOT_FOUND && view->expiration_time >= now()) {
            DhtValue v;
            v.is_dictionary = view->type == pb::FOUND_DICTIONARY;
            v.value = std::move(view->value);
            if (view->dictionary) v.dictionary = std::move(*view->dictionary);
            v.expiration_time = view->expiration_time;
            merge_into(st->result.value, std::move(v));
            st->result.providers.insert(next->peer_id);
            if (stop_at_value && !latest) st->done = true;
          }
        }
      }
      st->changed.notify();
    }
  };
  std::vector<std::function<asio::awaitable<void>()>> workers(
      std::max<std::size_t>(1, config_.num_workers), worker);
  co_await gather(host().executor(), std::move(workers));
  for (auto& [d, e] : st->beam) st->result.nearest.push_back(e);
  co_return std::move(st->result);
}

asio::awaitable<std::vector<RoutingEntry>> DHTNode::find_nearest_nodes(const DHTID& key) {
  auto r = co_await traverse(key, false, false);
  co_return std::move(r.nearest);
}

asio::awaitable<std::optional<DhtValue>> DHTNode::get(const DHTID& key, bool latest) {
  auto self = shared_from_this();
  std::optional<DhtValue> local = from_record(storage_.get(key));
  if (auto c = from_record(cache_.get(key))) merge_into(local, std::move(*c));
  if (local && !latest) co_return local;

  auto found = co_await traverse(key, true, latest);
  std::optional<DhtValue> value = std::move(found.value);
  if (local) merge_into(value, std::move(*local));
  if (!value) co_return std::nullopt;

  if (config_.cache_locally) {
    if (value->is_dictionary) {
      for (const auto& item : value->dictionary.items)
        (void)cache_.store_subkey(key, item.subkey, item.value, item.expiration_time);
    } else {
      (void)cache_.store(key, value->value, value->expiration_time);
    }
  }
  // hivemind caches the result at the nearest visited nodes that did not have it.
  std::vector<std::function<asio::awaitable<void>()>> pushes;
  auto item = as_store_item(key, *value, true);
  for (const auto& e : found.nearest) {
    if (!item || pushes.size() >= config_.cache_nearest) break;
    if (found.providers.count(e.peer_id)) continue;
    auto pid = lp::PeerId::from_bytes(e.peer_id);
    if (!pid) continue;
    pushes.push_back([this, self, peer = *pid, it = *item]() -> asio::awaitable<void> {
      std::vector<StoreItem> items{it};
      (void)co_await call_store(peer, items);
    });
  }
  co_await gather(host().executor(), std::move(pushes));
  co_return value;
}

asio::awaitable<bool> DHTNode::store(const DHTID& key, const std::optional<Bytes>& subkey,
                                     const Bytes& value, double expiration_time) {
  auto self = shared_from_this();
  std::optional<Value> subkey_value;
  if (subkey) {
    auto v = msgpack_decode(*subkey);
    if (!v || !is_hashable_subkey(*v)) co_return false;
    subkey_value = std::move(*v);
  }
  auto nearest = co_await find_nearest_nodes(key);

  std::size_t answered = 0;
  bool any_ok = false;
  // Self counts as a replica when it is among the num_replicas nearest (serving nodes only).
  if (!config_.client_mode) {
    std::size_t closer = 0;
    for (const auto& e : nearest)
      if ((e.node_id ^ key) < (own_id_ ^ key)) ++closer;
    if (closer < config_.num_replicas) {
      const bool ok = subkey_value
                          ? storage_.store_subkey(key, *subkey_value, value, expiration_time)
                          : storage_.store(key, value, expiration_time);
      any_ok = any_ok || ok;
      ++answered;
    }
  }
  StoreItem item;
  item.key = key;
  item.subkey = subkey ? *subkey : Bytes{kIsRegularValue};
  item.value = value;
  item.expiration_time = expiration_time;

  // Go down the list in rounds until num_replicas nodes answered or candidates run out.
  std::size_t next = 0;
  while (answered < config_.num_replicas && next < nearest.size()) {
    std::vector<std::function<asio::awaitable<void>()>> round;
    while (round.size() < config_.num_replicas - answered && next < nearest.size()) {
      auto pid = lp::PeerId::from_bytes(nearest[next++].peer_id);
      if (!pid) continue;
      round.push_back(
          [this, self, peer = *pid, &item, &answered, &any_ok]() -> asio::awaitable<void> {
            std::vector<StoreItem> items{item};
            auto r = co_await call_store(peer, items);
            if (!r) co_return;
            ++answered;
            if (r->store_ok(0)) any_ok = true;
          });
    }
    co_await gather(host().executor(), std::move(round));
  }
  co_return any_ok;
}

}  // namespace kwaai::p2p::hivemind::net
