#include "p2p/libp2p/host/peer_store.hpp"

#include <algorithm>

namespace kwaai::p2p::libp2p {

PeerInfo& PeerStore::entry(const PeerId& peer) {
  auto it = peers_.find(peer);
  if (it != peers_.end()) return it->second;
  if (peers_.size() >= kMaxPeers) peers_.erase(peers_.begin());  // arbitrary eviction
  return peers_[peer];
}

void PeerStore::add_addrs(const PeerId& peer, const std::vector<Multiaddr>& addrs) {
  auto& e = entry(peer);
  for (const auto& a : addrs) {
    auto plain = a.without_peer_id();
    if (plain.empty()) continue;
    if (std::find(e.addrs.begin(), e.addrs.end(), plain) != e.addrs.end()) continue;
    if (e.addrs.size() >= kMaxAddrsPerPeer) break;
    e.addrs.push_back(std::move(plain));
  }
}

void PeerStore::set_identify(const PeerId& peer, PeerInfo info) {
  auto& e = entry(peer);
  auto known = std::move(e.addrs);
  if (info.protocols.size() > kMaxProtocolsPerPeer) info.protocols.resize(kMaxProtocolsPerPeer);
  e = std::move(info);
  e.identified = true;
  auto fresh = std::move(e.addrs);
  e.addrs.clear();
  add_addrs(peer, fresh);
  add_addrs(peer, known);
}

std::optional<PeerInfo> PeerStore::get(const PeerId& peer) const {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return std::nullopt;
  return it->second;
}

std::vector<Multiaddr> PeerStore::addrs(const PeerId& peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? std::vector<Multiaddr>{} : it->second.addrs;
}

bool PeerStore::supports(const PeerId& peer, std::string_view protocol) const {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return false;
  const auto& p = it->second.protocols;
  return std::find(p.begin(), p.end(), protocol) != p.end();
}

}  // namespace kwaai::p2p::libp2p
