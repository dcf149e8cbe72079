// Kademlia peer routing on /ipfs/kad/1.0.0: a k-bucket routing table keyed by
// sha256(peer id bytes), the FIND_NODE server, and the iterative FIND_NODE lookup
// (alpha = 3 concurrent queries over the k = 20 closest).
//
// Only peer routing is implemented (FIND_NODE, and the legacy PING message); value and
// provider records are hivemind's business through its own DHT protocol, so other message
// types are answered by resetting the stream.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "p2p/libp2p/host/host.hpp"
#include "p2p/libp2p/protocols/identify.hpp"

namespace kwaai::p2p::libp2p {

inline constexpr std::string_view kKadProtocol = "/ipfs/kad/1.0.0";

using KadKey = std::array<std::uint8_t, 32>;
KadKey kad_key(const PeerId& id);  // sha256 of the id's multihash bytes
KadKey kad_key_of_bytes(ByteView key);
// Number of leading zero bits of a XOR b (256 when equal).
int common_prefix_length(const KadKey& a, const KadKey& b);
// a XOR b compared lexicographically: true if a is closer to target than b.
bool kad_closer(const KadKey& target, const KadKey& a, const KadKey& b);

struct KadPeer {
  PeerId id;
  std::vector<Multiaddr> addrs;
};

class RoutingTable {
 public:
  static constexpr std::size_t kBucketSize = 20;  // k

  explicit RoutingTable(const PeerId& self);
  // Adds or refreshes a peer (moves it to the bucket's tail). A full bucket keeps its old
  // entries (long-lived peers are the better bet, as Kademlia argues); returns false then.
  bool add(const PeerId& peer, const std::vector<Multiaddr>& addrs);
  void remove(const PeerId& peer);
  std::vector<KadPeer> closest(const KadKey& target, std::size_t count) const;
  std::optional<KadPeer> find(const PeerId& peer) const;
  std::size_t size() const;

 private:
  struct Entry {
    KadPeer peer;
    KadKey key;
  };
  KadKey self_key_;
  PeerId self_;
  std::array<std::vector<Entry>, 257> buckets_;  // by common prefix length with self
};

class KadService : public std::enable_shared_from_this<KadService> {
 public:
  struct Options {
    bool server_mode = true;  // serve FIND_NODE and advertise the protocol
    std::size_t alpha = 3;
    std::size_t k = RoutingTable::kBucketSize;
    std::chrono::milliseconds query_timeout{10000};
    std::size_t max_requests_per_stream = 256;
  };

  // Registers the handler (server mode) and learns DHT servers from identify results.
  static std::shared_ptr<KadService> attach(const std::shared_ptr<Host>& host,
                                            const std::shared_ptr<IdentifyService>& identify,
                                            Options options);
  static std::shared_ptr<KadService> attach(const std::shared_ptr<Host>& host,
                                            const std::shared_ptr<IdentifyService>& identify) {
    return attach(host, identify, Options{});
  }

  RoutingTable& table() { return table_; }
  // One FIND_NODE request to `peer`.
  asio::awaitable<Result<std::vector<KadPeer>>> find_node(const PeerId& peer, ByteView key);
  // Iterative lookup: the k closest peers to `key` that answered (closest first).
  asio::awaitable<Result<std::vector<KadPeer>>> lookup(ByteView key);
  // Finds a peer's addresses: routing table first, then a lookup.
  asio::awaitable<Result<KadPeer>> find_peer(const PeerId& peer);
  // Dials each address (with /p2p), then looks up our own id to fill the table.
  asio::awaitable<std::size_t> bootstrap(const std::vector<Multiaddr>& peers);

 private:
  KadService(std::weak_ptr<Host> host, Options options, const PeerId& self)
      : host_(std::move(host)), options_(options), table_(self) {}
  asio::awaitable<void> serve(YamuxStreamPtr s, ConnectionPtr conn);

  std::weak_ptr<Host> host_;
  Options options_;
  RoutingTable table_;
};

}  // namespace kwaai::p2p::libp2p
