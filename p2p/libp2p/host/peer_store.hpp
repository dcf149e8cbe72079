// What the host knows about other peers: addresses (from dials, identify, kad), protocols,
// agent and public key (from identify). Bounded: a peer can only add so much.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/libp2p/multiaddr.hpp"
#include "p2p/libp2p/peer_id.hpp"

namespace kwaai::p2p::libp2p {

struct PeerInfo {
  std::vector<Multiaddr> addrs;  // without /p2p suffix
  std::vector<std::string> protocols;
  std::string agent_version;
  std::string protocol_version;
  std::optional<PublicKey> public_key;
  std::optional<Multiaddr> observed_addr;  // how this peer saw us
  bool identified = false;
};

class PeerStore {
 public:
  static constexpr std::size_t kMaxAddrsPerPeer = 32;
  static constexpr std::size_t kMaxProtocolsPerPeer = 128;
  static constexpr std::size_t kMaxPeers = 10000;

  // Adds addresses (duplicates ignored, /p2p suffix stripped, capped per peer).
  void add_addrs(const PeerId& peer, const std::vector<Multiaddr>& addrs);
  // Replaces the identify-derived fields.
  void set_identify(const PeerId& peer, PeerInfo info);
  std::optional<PeerInfo> get(const PeerId& peer) const;
  std::vector<Multiaddr> addrs(const PeerId& peer) const;
  bool supports(const PeerId& peer, std::string_view protocol) const;
  std::size_t size() const { return peers_.size(); }

 private:
  PeerInfo& entry(const PeerId& peer);
  std::unordered_map<PeerId, PeerInfo> peers_;
};

}  // namespace kwaai::p2p::libp2p
