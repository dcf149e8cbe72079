// hivemind's Kademlia routing table (hivemind/dht/routing.py) as a pure data structure: k-buckets
// over contiguous id ranges, the depth-modulo split rule, bounded replacement caches, ping
// candidates for full buckets, and nearest-neighbour queries. The network side decides when to
// ping and reports the outcome back (on_ping_result / remove).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/dht_id.hpp"

namespace kwaai::p2p::hivemind {

struct RoutingTableConfig {
  std::size_t bucket_size = 20;  // k (hivemind DHTNode bucket_size)
  int depth_modulo = 5;          // b (hivemind DHTNode depth_modulo)
  // hivemind keeps unbounded replacement lists; ours are capped so that a flood of fake node ids
  // cannot grow memory. The oldest replacement is dropped first.
  std::size_t max_replacements = 20;
};

struct RoutingEntry {
  DHTID node_id;
  Bytes peer_id;  // libp2p PeerID multihash bytes
};

class RoutingTable {
 public:
  enum class AddOutcome {
    added,        // new entry in a bucket
    updated,      // existing entry refreshed (moved to most-recently-seen)
    replacement,  // bucket full and not splittable: kept in the replacement cache
    rejected,     // own id, or empty peer id
  };
  struct AddResult {
    AddOutcome outcome;
    // When the node went to the replacement cache: the least-recently-seen entry of that bucket
    // that is not already awaiting a ping. The caller should ping it and report on_ping_result.
    std::optional<RoutingEntry> ping_candidate;
  };

  explicit RoutingTable(const DHTID& own_id, RoutingTableConfig config = {});

  const DHTID& own_id() const { return own_id_; }
  const RoutingTableConfig& config() const { return config_; }

  // update_routing_table on a successful exchange (hivemind add_or_update_node). `now` is DHT
  // time, kept per bucket for refresh scheduling.
  AddResult add_or_update(const DHTID& node_id, const Bytes& peer_id, double now);
  // A failed exchange: drop the node; its bucket promotes the most recent replacement.
  void remove(const DHTID& node_id);
  // Outcome of a ping requested through AddResult::ping_candidate.
  void on_ping_result(const DHTID& node_id, bool alive, double now);

  // Up to k entries nearest to `query` by XOR distance, nearest first, never own id nor
  // `exclude` (hivemind get_nearest_neighbors).
  std::vector<RoutingEntry> nearest(const DHTID& query, std::size_t k,
                                    const std::optional<DHTID>& exclude = std::nullopt) const;

  std::optional<Bytes> peer_of(const DHTID& node_id) const;
  std::optional<DHTID> node_of(const Bytes& peer_id) const;
  bool contains(const DHTID& node_id) const;
  std::size_t size() const;  // entries in buckets (not replacements)
  std::size_t bucket_count() const { return buckets_.size(); }
  // Buckets not updated since `older_than` (DHT time): candidates for a refresh lookup; returns
  // one id inside each such bucket's range (the range start).
  std::vector<DHTID> stale_bucket_ids(double older_than) const;

  struct Bucket {
    DHTID prefix;   // lower bound of the range; bits beyond `depth` are zero
    int depth = 0;  // number of fixed leading bits; the range holds 2^(160-depth) ids
    std::vector<RoutingEntry> nodes;         // least-recently-seen first
    std::vector<RoutingEntry> replacements;  // oldest first
    std::vector<DHTID> pinged;               // entries with an outstanding ping request
    double last_updated = 0;
    bool covers(const DHTID& id) const {
      return depth == 0 || id.common_prefix_length(prefix) >= depth;
    }
  };
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  std::size_t bucket_index(const DHTID& id) const;
  void split(std::size_t index);

  DHTID own_id_;
  RoutingTableConfig config_;
  std::vector<Bucket> buckets_;  // ordered by range
};

}  // namespace kwaai::p2p::hivemind
