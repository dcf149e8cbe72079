// A host with the standard protocol set (identify + push, ping, Kademlia), plus the place
// where other modules (the hivemind DHT RPCs) attach their handlers to every node that
// `kwaainet dht run` starts, without the command knowing about them.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "p2p/libp2p/host/host.hpp"
#include "p2p/libp2p/protocols/identify.hpp"
#include "p2p/libp2p/protocols/kad.hpp"
#include "p2p/libp2p/protocols/ping.hpp"

namespace kwaai::p2p::libp2p {

struct Libp2pNode {
  std::shared_ptr<Host> host;
  std::shared_ptr<IdentifyService> identify;
  std::shared_ptr<PingService> ping;
  std::shared_ptr<KadService> kad;

  static Libp2pNode create(asio::any_io_executor ex, PrivateKey identity, HostConfig config = {},
                           KadService::Options kad = {});
};

using NodeSetupHook = std::function<void(Libp2pNode&)>;
// Hooks run in registration order on a freshly created node, before it listens or dials.
void register_node_setup(std::string name, NodeSetupHook hook);
const std::vector<std::pair<std::string, NodeSetupHook>>& node_setup_hooks();

// Loads a PrivateKey protobuf file (p2pd/hivemind format); creates an Ed25519 one (mode 0600)
// when the file does not exist.
Result<PrivateKey> load_or_create_identity(const std::filesystem::path& path);

}  // namespace kwaai::p2p::libp2p
