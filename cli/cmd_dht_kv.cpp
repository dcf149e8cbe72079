// `kwaainet dht get` / `kwaainet dht put`: a client-mode hivemind DHT node that bootstraps
// through --initial-peers, runs one beam-search get or store, prints the outcome and exits.
// Also attaches the DHTProtocol.rpc_* handlers to the node that `kwaainet dht run` starts.
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/hivemind/net/dht_node.hpp"
#include "p2p/libp2p/host/node.hpp"

namespace kwaai::cli {
namespace {

namespace lp = kwaai::p2p::libp2p;
namespace hm = kwaai::p2p::hivemind;
namespace net = kwaai::p2p::hivemind::net;
namespace asio = boost::asio;

struct KvOptions {
  std::vector<std::string> initial_peers;
  std::string key;
  std::string value;
  std::string subkey;
  double ttl = 0;
  bool msgpack_hex = false;
  bool json = false;
  bool subkeys = false;
  bool latest = false;
  double timeout_s = 30;
};

// Value bytes as stored: msgpack of the string, or the given msgpack bytes (validated).
std::optional<hm::Bytes> encode_arg(const std::string& text, bool msgpack_hex) {
  if (!msgpack_hex) return *hm::msgpack_encode(hm::Value::str(text));
  auto raw = hm::from_hex(text);
  if (!raw || !hm::msgpack_decode(*raw)) return std::nullopt;
  return *raw;
}

std::string show(hm::ByteView msgpack) {
  auto v = hm::msgpack_decode(msgpack);
  return v ? v->debug_string() : "<undecodable msgpack " + hm::to_hex(msgpack) + ">";
}

// Runs `body` on a fresh client-mode node after bootstrapping; returns the process exit code.
template <class Body>
int with_client(const KvOptions& opt, Body body) {
  std::vector<lp::Multiaddr> initial;
  for (const auto& s : opt.initial_peers) {
    auto m = lp::Multiaddr::from_string(s);
    if (!m || !m->peer_id()) {
      spdlog::error("--initial-peers {}: {}", s,
                    m ? std::string("needs a /p2p/<peer id> suffix") : m.error().to_string());
      return 2;
    }
    initial.push_back(*m);
  }
  if (initial.empty()) {
    spdlog::error("--initial-peers is required");
    return 2;
  }
  asio::io_context ctx;
  auto node = lp::Libp2pNode::create(ctx.get_executor(), lp::PrivateKey::generate_ed25519(), {},
                                     lp::KadService::Options{.server_mode = false});
  net::DHTNodeConfig cfg;
  cfg.client_mode = true;
  auto dht = net::DHTNode::create(node.host, node.kad, cfg);
  int rc = 1;
  bool finished = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        const std::size_t n = co_await dht->bootstrap(initial);
        if (n == 0) {
          spdlog::error("dht: none of the initial peers answered");
          rc = 1;
        } else {
          rc = co_await body(*dht);
        }
        finished = true;
        co_await node.host->close();
        ctx.stop();
      },
      asio::detached);
  asio::steady_timer deadline(ctx, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                       std::chrono::duration<double>(opt.timeout_s)));
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (ec || finished) return;
    spdlog::error("dht: gave up after {} s", opt.timeout_s);
    rc = 1;
    ctx.stop();
  });
  ctx.run();
  return rc;
}

int run_get(const KvOptions& opt) {
  const auto key = hm::DHTID::from_key_str(opt.key);
  return with_client(opt, [&](net::DHTNode& dht) -> asio::awaitable<int> {
    auto v = co_await dht.get(key, opt.latest);
    nlohmann::json j;
    j["key"] = opt.key;
    j["found"] = v.has_value();
    if (!v) {
      if (opt.json)
        std::cout << j.dump() << "\n";
      else
        std::cout << "not found\n";
      co_return 1;
    }
    j["expiration_time"] = v->expiration_time;
    if (!v->is_dictionary) {
      j["value"] = show(v->value);
      if (opt.json)
        std::cout << j.dump() << "\n";
      else
        std::cout << j["value"].get<std::string>() << "  (expires " << std::fixed
                  << v->expiration_time << ")\n";
      co_return 0;
    }
    j["subkeys"] = nlohmann::json::array();
    for (const auto& it : v->dictionary.items)
      j["subkeys"].push_back({{"subkey", it.subkey.debug_string()},
                              {"value", show(it.value)},
                              {"expiration_time", it.expiration_time}});
    if (opt.json) {
      if (!opt.subkeys) j.erase("subkeys"), j["subkey_count"] = v->dictionary.items.size();
      std::cout << j.dump() << "\n";
      co_return 0;
    }
    std::cout << "dictionary with " << v->dictionary.items.size() << " subkeys  (expires "
              << std::fixed << v->expiration_time << ")\n";
    if (opt.subkeys)
      for (const auto& s : j["subkeys"])
        std::cout << "  " << s["subkey"].get<std::string>() << ": " << s["value"].get<std::string>()
                  << "  (expires " << s["expiration_time"].get<double>() << ")\n";
    co_return 0;
  });
}

int run_put(const KvOptions& opt) {
  const auto key = hm::DHTID::from_key_str(opt.key);
  auto value = encode_arg(opt.value, opt.msgpack_hex);
  if (!value) {
    spdlog::error("VALUE is not valid msgpack hex");
    return 2;
  }
  std::optional<hm::Bytes> subkey;
  if (!opt.subkey.empty()) {
    subkey = encode_arg(opt.subkey, opt.msgpack_hex);
    if (!subkey) {
      spdlog::error("--subkey is not valid msgpack hex");
      return 2;
    }
  }
  if (opt.ttl <= 0) {
    spdlog::error("--ttl must be positive");
    return 2;
  }
  return with_client(opt, [&](net::DHTNode& dht) -> asio::awaitable<int> {
    const double expiration = net::unix_time() + opt.ttl;
    const bool ok = co_await dht.store(key, subkey, *value, expiration);
    if (opt.json) {
      nlohmann::json j{{"key", opt.key}, {"stored", ok}, {"expiration_time", expiration}};
      std::cout << j.dump() << "\n";
    } else {
      std::cout << (ok ? "stored" : "not stored") << "  (expires " << std::fixed << expiration
                << ")\n";
    }
    co_return ok ? 0 : 1;
  });
}

// Every node `dht run` starts serves the hivemind DHT too; it learns DHT peers by pinging the
// peers it dials (the libp2p bootstrap), so no separate hivemind bootstrap list is needed.
std::vector<std::shared_ptr<net::DHTNode>>& served_nodes() {
  static std::vector<std::shared_ptr<net::DHTNode>> nodes;
  return nodes;
}

}  // namespace

void register_dht_kv(CLI::App& dht) {
  lp::register_node_setup("hivemind-dht", [](lp::Libp2pNode& node) {
    net::DHTNodeConfig cfg;
    cfg.ping_new_connections = true;
    served_nodes().push_back(net::DHTNode::create(node.host, node.kad, cfg));
  });

  auto opt = std::make_shared<KvOptions>();
  auto* get = dht.add_subcommand("get", "Find a value on the hivemind DHT and print it");
  get->add_option("KEY", opt->key, "Key (a string, hashed as hivemind does)")->required();
  get->add_option("--initial-peers", opt->initial_peers, "/ip4/../tcp/N/p2p/<id> ...")->required();
  get->add_flag("--subkeys", opt->subkeys, "Print every subkey of a dictionary value");
  get->add_flag("--latest", opt->latest, "Search the whole neighbourhood for the freshest value");
  get->add_flag("--json", opt->json, "One JSON object on stdout");
  get->add_option("--timeout", opt->timeout_s, "Seconds before giving up")->capture_default_str();
  get->callback([opt] {
    if (const int rc = run_get(*opt); rc != 0) throw CLI::RuntimeError(rc);
  });

  auto* put = dht.add_subcommand("put", "Store a value on the hivemind DHT");
  put->add_option("KEY", opt->key, "Key (a string)")->required();
  put->add_option("VALUE", opt->value, "Value: a string, or msgpack hex with --msgpack-hex")
      ->required();
  put->add_option("--subkey", opt->subkey, "Store under this subkey (a dictionary value)");
  put->add_option("--ttl", opt->ttl, "Seconds until the value expires")->required();
  put->add_flag("--msgpack-hex", opt->msgpack_hex, "VALUE and --subkey are msgpack bytes in hex");
  put->add_option("--initial-peers", opt->initial_peers, "/ip4/../tcp/N/p2p/<id> ...")->required();
  put->add_flag("--json", opt->json, "One JSON object on stdout");
  put->add_option("--timeout", opt->timeout_s, "Seconds before giving up")->capture_default_str();
  put->callback([opt] {
    if (const int rc = run_put(*opt); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace kwaai::cli
