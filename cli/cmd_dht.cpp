// `kwaainet dht run`: a libp2p node (identify, ping, Kademlia) that prints its full listen
// addresses on stdout, one per line and nothing else, dials the initial peers and serves
// until SIGINT/SIGTERM, then closes every connection with a yamux go-away. Handlers of other
// modules (the hivemind DHT RPCs) attach through p2p::libp2p::register_node_setup().
#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "p2p/libp2p/host/node.hpp"

namespace kwaai::cli {
namespace {

namespace lp = kwaai::p2p::libp2p;
namespace asio = boost::asio;

struct DhtRunOptions {
  std::vector<std::string> host_maddrs{"/ip4/0.0.0.0/tcp/0"};
  std::vector<std::string> initial_peers;
  std::string identity;  // empty: a fresh key per run
};

int run_dht(const DhtRunOptions& opt) {
  std::vector<lp::Multiaddr> listen, initial;
  for (const auto& s : opt.host_maddrs) {
    auto m = lp::Multiaddr::from_string(s);
    if (!m) {
      spdlog::error("--host-maddr {}: {}", s, m.error().to_string());
      return 2;
    }
    listen.push_back(*m);
  }
  for (const auto& s : opt.initial_peers) {
    auto m = lp::Multiaddr::from_string(s);
    if (!m || !m->peer_id()) {
      spdlog::error("--initial-peers {}: {}", s,
                    m ? std::string("needs a /p2p/<peer id> suffix") : m.error().to_string());
      return 2;
    }
    initial.push_back(*m);
  }
  auto key = opt.identity.empty() ? lp::Result<lp::PrivateKey>(lp::PrivateKey::generate_ed25519())
                                  : lp::load_or_create_identity(opt.identity);
  if (!key) {
    spdlog::error("identity {}: {}", opt.identity, key.error().to_string());
    return 1;
  }

  asio::io_context ctx;
  lp::HostConfig cfg;
  cfg.agent_version = std::string("kwaainet/") + KWAAI_VERSION;
  auto node = lp::Libp2pNode::create(ctx.get_executor(), std::move(*key), cfg);
  for (const auto& [name, hook] : lp::node_setup_hooks()) {
    spdlog::debug("dht: attaching {}", name);
    hook(node);
  }
  for (const auto& m : listen) {
    if (auto st = node.host->listen(m); !st) {
      spdlog::error("{}", st.error().to_string());
      return 1;
    }
  }
  for (const auto& a : node.host->announce_addrs())
    std::cout << a.with_peer_id(node.host->id()).to_string() << "\n";
  std::cout.flush();

  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("dht: signal {}, closing connections", sig);
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          co_await node.host->close();
          ctx.stop();
        },
        asio::detached);
  });
  if (!initial.empty()) {
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          const std::size_t n = co_await node.kad->bootstrap(initial);
          spdlog::info("dht: bootstrapped, {} peers in the routing table", n);
        },
        asio::detached);
  }
  ctx.run();
  return 0;
}

}  // namespace

// cmd_dht_kv.cpp: `dht get` / `dht put`, and the hivemind DHT RPCs on `dht run` nodes.
void register_dht_kv(CLI::App& dht);

void register_dht(CLI::App& app, GlobalOptions& /*global*/) {
  auto* dht = app.add_subcommand("dht", "libp2p DHT node (Kademlia peer routing)");
  dht->require_subcommand(1);
  auto opt = std::make_shared<DhtRunOptions>();
  auto* run = dht->add_subcommand(
      "run", "Serve until SIGINT/SIGTERM; prints each listen address /ip4/../tcp/N/p2p/<id>");
  run->add_option("--host-maddr", opt->host_maddrs,
                  "Listen multiaddr(s), e.g. /ip4/0.0.0.0/tcp/31337")
      ->capture_default_str();
  run->add_option("--initial-peers", opt->initial_peers,
                  "Peers to dial and bootstrap from (/ip4/../tcp/N/p2p/<id>)");
  run->add_option("--identity", opt->identity,
                  "PrivateKey protobuf file (p2pd/hivemind format); created if missing");
  run->callback([opt] {
    if (const int rc = run_dht(*opt); rc != 0) throw CLI::RuntimeError(rc);
  });
  register_dht_kv(*dht);
}

}  // namespace kwaai::cli
