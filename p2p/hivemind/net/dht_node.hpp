// hivemind's DHTNode on a libp2p host: the DHTProtocol.rpc_ping/store/find server (decisions
// from dht_server.hpp), the client calls, bootstrap through initial peers, and hivemind's beam
// search (traverse_dht) for get and store. Peer addresses are not carried by hivemind messages;
// they come from the host's peer store (identify) or the host's Kademlia FIND_NODE.
//
// Threading: all methods run on the host's single-threaded executor.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/hivemind/dht_server.hpp"
#include "p2p/hivemind/net/rpc.hpp"
#include "p2p/hivemind/routing_table.hpp"
#include "p2p/hivemind/storage.hpp"
#include "p2p/libp2p/protocols/kad.hpp"

namespace kwaai::p2p::hivemind::net {

inline constexpr const char* kRpcPing = "DHTProtocol.rpc_ping";
inline constexpr const char* kRpcStore = "DHTProtocol.rpc_store";
inline constexpr const char* kRpcFind = "DHTProtocol.rpc_find";

struct DHTNodeConfig {
  std::optional<DHTID> node_id;  // random when absent
  bool client_mode = false;      // no handlers, empty NodeInfo: nobody adds us to a table
  std::size_t bucket_size = 20;  // k; also the beam size of searches
  int depth_modulo = 5;
  std::size_t num_replicas = 5;   // nodes a store goes to
  std::size_t num_workers = 4;    // concurrent rpc_find calls per search
  std::size_t cache_nearest = 1;  // nearest visited nodes that get a found value in_cache
  bool cache_locally = true;      // found values go to our cache storage
  std::chrono::milliseconds rpc_timeout{3000};
  double blacklist_base_s = 5.0;  // a failing peer is skipped for base * rate^(failures-1)
  double blacklist_rate = 2.0;
  std::size_t max_blacklisted = 10'000;
  StorageLimits storage_limits;
  RpcLimits rpc_limits;
  DhtClock clock;  // DHT time (Unix seconds); wall clock when empty
  // Ping every peer we open a connection to, to learn whether it is a DHT node (how `dht run`
  // fills its table from the libp2p bootstrap it does anyway).
  bool ping_new_connections = false;
};

// A value as found on the DHT: regular bytes or a dictionary of subkeys.
struct DhtValue {
  bool is_dictionary = false;
  Bytes value;                    // regular: msgpack bytes as stored
  DictionaryDHTValue dictionary;  // dictionary: merged subkeys
  double expiration_time = 0;
};

class DHTNode : public std::enable_shared_from_this<DHTNode> {
 public:
  // Attaches to a running host (and its Kademlia service, used to find peer addresses; may be
  // null). Registers the three handlers unless in client mode.
  static std::shared_ptr<DHTNode> create(const std::shared_ptr<lp::Host>& host,
                                         std::shared_ptr<lp::KadService> kad,
                                         DHTNodeConfig config = {});
  ~DHTNode();

  const DHTID& node_id() const { return own_id_; }
  bool client_mode() const { return config_.client_mode; }
  double now() const { return clock_(); }
  RoutingTable& table() { return table_; }
  DHTLocalStorage& storage() { return storage_; }
  DHTLocalStorage& cache() { return cache_; }
  lp::Host& host() { return *host_.lock(); }
  const DHTNodeConfig& config() const { return config_; }

  // Pings every initial peer (/ip4/../tcp/../p2p/..) with validate (unless client mode), then
  // looks up our own id to fill the table. Returns how many initial peers answered.
  asio::awaitable<std::size_t> bootstrap(const std::vector<lp::Multiaddr>& initial_peers);
  // Learns the node behind a connected/known peer by pinging it (no validate).
  asio::awaitable<bool> add_peer(const lp::PeerId& peer);

  // hivemind DHTNode.get: local storage/cache first; stops at the first unexpired value unless
  // `latest`, which traverses fully and keeps the freshest (dictionaries merged by subkey).
  asio::awaitable<std::optional<DhtValue>> get(const DHTID& key, bool latest = false);
  // hivemind DHTNode.store: to the num_replicas nearest nodes (self included when serving).
  // `subkey`: msgpack bytes of the subkey, or empty for a regular value. True if any replica
  // accepted it.
  asio::awaitable<bool> store(const DHTID& key, const std::optional<Bytes>& subkey,
                              const Bytes& value, double expiration_time);
  // The k nearest responding nodes to `key` (beam search), nearest first; self not included.
  asio::awaitable<std::vector<RoutingEntry>> find_nearest_nodes(const DHTID& key);

  // Single RPCs (client side); on success the callee enters our routing table, on transport
  // failure it leaves it.
  asio::awaitable<lp::Result<pb::PingResponse>> call_ping(const lp::PeerId& peer, bool validate);
  asio::awaitable<lp::Result<pb::StoreResponse>> call_store(const lp::PeerId& peer,
                                                            const std::vector<StoreItem>& items);
  asio::awaitable<lp::Result<pb::FindResponse>> call_find(const lp::PeerId& peer,
                                                          const std::vector<DHTID>& keys);

  // Removes the handlers; later inbound calls are refused by the host.
  void shutdown();
  bool blacklisted(const Bytes& peer) const;

 private:
  DHTNode(std::weak_ptr<lp::Host> host, std::shared_ptr<lp::KadService> kad, DHTNodeConfig config,
          DHTID id);
  void register_handlers();
  std::optional<DHTID> own_info_id() const {
    return config_.client_mode ? std::nullopt : std::optional<DHTID>(own_id_);
  }
  // Routing table bookkeeping, as hivemind's update_routing_table.
  void node_alive(const DHTID& node, const Bytes& peer);
  void node_failed(const Bytes& peer);
  void note_failure(const Bytes& peer);
  void note_success(const Bytes& peer);
  // Makes sure the host can dial `peer`: a live connection, known addresses, or a kad lookup.
  asio::awaitable<void> resolve(const lp::PeerId& peer);
  asio::awaitable<lp::Result<Bytes>> call(const lp::PeerId& peer, const char* name,
                                          const Bytes& request);

  asio::awaitable<UnaryOutcome> on_ping(const lp::PeerId& caller, Bytes request);
  asio::awaitable<UnaryOutcome> on_store(const lp::PeerId& caller, Bytes request);
  asio::awaitable<UnaryOutcome> on_find(const lp::PeerId& caller, Bytes request);
  void learn_caller(const pb::NodeInfo& info, const lp::PeerId& caller);

  struct SearchResult;
  asio::awaitable<SearchResult> traverse(const DHTID& key, bool stop_at_value, bool latest);

  std::weak_ptr<lp::Host> host_;
  std::shared_ptr<lp::KadService> kad_;
  DHTNodeConfig config_;
  DHTID own_id_;
  DhtClock clock_;
  RoutingTable table_;
  DHTLocalStorage storage_;
  DHTLocalStorage cache_;
  std::shared_ptr<RpcServer> server_;
  struct Strike {
    int failures = 0;
    double until = 0;
  };
  std::unordered_map<std::string, Strike> blacklist_;  // by peer id bytes
  bool stopped_ = false;
};

// Wall-clock DHT time (hivemind get_dht_time: time.time()).
double unix_time();
DHTID random_dht_id();

}  // namespace kwaai::p2p::hivemind::net
