#include "p2p/hivemind/routing_table.hpp"

#include <algorithm>

namespace kwaai::p2p::hivemind {
namespace {

template <class V>
auto find_node(V& v, const DHTID& id) {
  return std::find_if(v.begin(), v.end(), [&](const RoutingEntry& e) { return e.node_id == id; });
}

DHTID with_bit(const DHTID& id, int bit) {
  DHTID::Raw r = id.raw();
  r[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
  return DHTID(r);
}

}  // namespace

RoutingTable::RoutingTable(const DHTID& own_id, RoutingTableConfig config)
    : own_id_(own_id), config_(config) {
  if (config_.bucket_size == 0) config_.bucket_size = 1;
  if (config_.depth_modulo <= 0) config_.depth_modulo = 1;
  buckets_.push_back(Bucket{});
}

std::size_t RoutingTable::bucket_index(const DHTID& id) const {
  // Buckets partition the id space in order; the last bucket whose lower bound is <= id.
  auto it = std::upper_bound(buckets_.begin(), buckets_.end(), id,
                             [](const DHTID& x, const Bucket& b) { return x < b.prefix; });
  return static_cast<std::size_t>(it - buckets_.begin()) - 1;
}

void RoutingTable::split(std::size_t index) {
  Bucket old = std::move(buckets_[index]);
  Bucket left, right;
  left.prefix = old.prefix;
  right.prefix = with_bit(old.prefix, old.depth);
  left.depth = right.depth = old.depth + 1;
  left.last_updated = right.last_updated = old.last_updated;
  for (auto& e : old.nodes) (right.covers(e.node_id) ? right : left).nodes.push_back(std::move(e));
  for (auto& e : old.replacements)
    (right.covers(e.node_id) ? right : left).replacements.push_back(std::move(e));
  for (auto& id : old.pinged) (right.covers(id) ? right : left).pinged.push_back(id);
  buckets_[index] = std::move(left);
  buckets_.insert(buckets_.begin() + static_cast<std::ptrdiff_t>(index) + 1, std::move(right));
}

RoutingTable::AddResult RoutingTable::add_or_update(const DHTID& node_id, const Bytes& peer_id,
                                                    double now) {
  if (node_id == own_id_ || peer_id.empty()) return {AddOutcome::rejected, std::nullopt};
  // A peer that reappears under a new node id replaces its old entry (ids are not
  // authenticated; the PeerID is, so the PeerID is what we keep unique).
  if (auto old = node_of(peer_id); old && *old != node_id) remove(*old);
  for (;;) {
    const std::size_t bi = bucket_index(node_id);
    Bucket& b = buckets_[bi];
    std::erase(b.pinged, node_id);
    b.last_updated = now;
    if (auto it = find_node(b.nodes, node_id); it != b.nodes.end()) {
      b.nodes.erase(it);
      b.nodes.push_back({node_id, peer_id});
      return {AddOutcome::updated, std::nullopt};
    }
    if (b.nodes.size() < config_.bucket_size) {
      std::erase_if(b.replacements, [&](const RoutingEntry& e) { return e.node_id == node_id; });
      b.nodes.push_back({node_id, peer_id});
      return {AddOutcome::added, std::nullopt};
    }
    // Full: hivemind splits when the bucket holds our own id or its depth is not a multiple of
    // depth_modulo; a bucket at maximal depth cannot split.
    if ((b.covers(own_id_) || b.depth % config_.depth_modulo != 0) && b.depth < DHTID::kBits) {
      split(bi);
      continue;
    }
    std::erase_if(b.replacements, [&](const RoutingEntry& e) { return e.node_id == node_id; });
    b.replacements.push_back({node_id, peer_id});
    if (b.replacements.size() > config_.max_replacements)
      b.replacements.erase(b.replacements.begin());
    AddResult r{AddOutcome::replacement, std::nullopt};
    for (const auto& e : b.nodes) {
      if (std::find(b.pinged.begin(), b.pinged.end(), e.node_id) == b.pinged.end()) {
        b.pinged.push_back(e.node_id);
        r.ping_candidate = e;
        break;
      }
    }
    return r;
  }
}

void RoutingTable::remove(const DHTID& node_id) {
  Bucket& b = buckets_[bucket_index(node_id)];
  std::erase(b.pinged, node_id);
  if (auto it = find_node(b.nodes, node_id); it != b.nodes.end()) {
    b.nodes.erase(it);
    if (!b.replacements.empty()) {  // promote the most recently added replacement
      b.nodes.push_back(std::move(b.replacements.back()));
      b.replacements.pop_back();
    }
    return;
  }
  std::erase_if(b.replacements, [&](const RoutingEntry& e) { return e.node_id == node_id; });
}

void RoutingTable::on_ping_result(const DHTID& node_id, bool alive, double now) {
  if (alive) {
    if (auto peer = peer_of(node_id)) add_or_update(node_id, *peer, now);
    std::erase(buckets_[bucket_index(node_id)].pinged, node_id);
  } else {
    remove(node_id);
  }
}

std::vector<RoutingEntry> RoutingTable::nearest(const DHTID& query, std::size_t k,
                                                const std::optional<DHTID>& exclude) const {
  std::vector<const RoutingEntry*> all;
  for (const auto& b : buckets_)
    for (const auto& e : b.nodes)
      if (!(exclude && e.node_id == *exclude) && e.node_id != own_id_) all.push_back(&e);
  auto closer = [&](const RoutingEntry* a, const RoutingEntry* b) {
    return (a->node_id ^ query) < (b->node_id ^ query);
  };
  const std::size_t n = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(), closer);
  std::vector<RoutingEntry> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(*all[i]);
  return out;
}

std::optional<Bytes> RoutingTable::peer_of(const DHTID& node_id) const {
  const Bucket& b = buckets_[bucket_index(node_id)];
  if (auto it = find_node(b.nodes, node_id); it != b.nodes.end()) return it->peer_id;
  return std::nullopt;
}

std::optional<DHTID> RoutingTable::node_of(const Bytes& peer_id) const {
  for (const auto& b : buckets_)
    for (const auto& e : b.nodes)
      if (e.peer_id == peer_id) return e.node_id;
  return std::nullopt;
}

bool RoutingTable::contains(const DHTID& node_id) const {
  return peer_of(node_id).has_value();
}

std::size_t RoutingTable::size() const {
  std::size_t n = 0;
  for (const auto& b : buckets_) n += b.nodes.size();
  return n;
}

std::vector<DHTID> RoutingTable::stale_bucket_ids(double older_than) const {
  std::vector<DHTID> out;
  for (const auto& b : buckets_)
    if (b.last_updated < older_than) out.push_back(b.prefix);
  return out;
}

}  // namespace kwaai::p2p::hivemind
