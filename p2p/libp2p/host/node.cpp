#include "p2p/libp2p/host/node.hpp"

#include <spdlog/spdlog.h>

#include <system_error>

namespace kwaai::p2p::libp2p {

Libp2pNode Libp2pNode::create(asio::any_io_executor ex, PrivateKey identity, HostConfig config,
                              KadService::Options kad) {
  Libp2pNode n;
  n.host = Host::create(std::move(ex), std::move(identity), std::move(config));
  n.identify = IdentifyService::attach(n.host);
  n.ping = PingService::attach(n.host);
  n.kad = KadService::attach(n.host, n.identify, kad);
  return n;
}

namespace {
std::vector<std::pair<std::string, NodeSetupHook>>& hooks() {
  static std::vector<std::pair<std::string, NodeSetupHook>> h;
  return h;
}
}  // namespace

void register_node_setup(std::string name, NodeSetupHook hook) {
  hooks().emplace_back(std::move(name), std::move(hook));
}

const std::vector<std::pair<std::string, NodeSetupHook>>& node_setup_hooks() {
  return hooks();
}

Result<PrivateKey> load_or_create_identity(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return PrivateKey::load_file(path);
  auto key = PrivateKey::generate_ed25519();
  if (auto st = key.save_file(path); !st) return std::move(st).error();
  spdlog::info("created identity {} ({})", path.string(),
               PeerId::from_public_key(key.public_key()).to_string());
  return key;
}

}  // namespace kwaai::p2p::libp2p
