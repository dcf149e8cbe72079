#include "cli/client/local_swarm.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <stdexcept>

#include "p2p/hivemind/net/dht_node.hpp"

namespace kwaai::client {

namespace lp = kwaai::p2p::libp2p;
namespace net = kwaai::p2p::hivemind::net;
namespace asio = boost::asio;

template <class F>
void LocalSwarm::on_io(F make) {
  std::promise<void> done;
  auto fut = done.get_future();
  asio::co_spawn(
      ctx_,
      [&]() -> asio::awaitable<void> {
        try {
          co_await make();
          done.set_value();
        } catch (...) {
          done.set_exception(std::current_exception());
        }
      },
      asio::detached);
  fut.get();
}

namespace {
lp::Multiaddr loopback_any_port() {
  return *lp::Multiaddr::from_string("/ip4/127.0.0.1/tcp/0");
}

std::string full_addr(const lp::Host& host) {
  for (const auto& a : host.listen_addrs()) return a.to_string() + "/p2p/" + host.id().to_base58();
  throw std::runtime_error("local swarm: host has no listen address");
}
}  // namespace

LocalSwarm::LocalSwarm(std::string model_dir, std::string dht_prefix)
    : model_dir_(std::move(model_dir)), prefix_(std::move(dht_prefix)) {
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      ctx_.get_executor());
  thread_ = std::thread([this] { ctx_.run(); });
  on_io([this]() -> asio::awaitable<void> {
    boot_ = lp::Libp2pNode::create(ctx_.get_executor(), lp::PrivateKey::generate_ed25519());
    net::DHTNodeConfig cfg;
    cfg.ping_new_connections = true;  // as `dht run`: learns servers as they connect
    boot_dht_ = net::DHTNode::create(boot_.host, boot_.kad, cfg);
    if (auto st = boot_.host->listen(loopback_any_port()); !st)
      throw std::runtime_error("local swarm: bootstrap listen: " + st.error().to_string());
    bootstrap_addr_ = full_addr(*boot_.host);
    co_return;
  });
}

LocalSwarm::~LocalSwarm() {
  try {
    on_io([this]() -> asio::awaitable<void> {
      for (auto& s : servers_) {
        if (!s->killed) co_await s->server->shutdown();
        if (!s->killed) co_await s->node.host->close();
      }
      boot_dht_->shutdown();
      co_await boot_.host->close();
    });
  } catch (...) {
    // Teardown must finish; a failed OFFLINE announcement changes nothing here.
  }
  work_.reset();
  ctx_.stop();
  thread_.join();
  // Servers (and their worker threads) go before their executors and backends.
  for (auto& s : servers_) s->server.reset();
}

std::size_t LocalSwarm::add_server(std::uint32_t start, std::uint32_t end,
                                   std::optional<serve::ServerConfig> given) {
  return add_server(engine::open_model(model_dir_), start, end, std::move(given));
}

std::size_t LocalSwarm::add_server(std::unique_ptr<engine::ModelSource> source, std::uint32_t start,
                                   std::uint32_t end, std::optional<serve::ServerConfig> given) {
  serve::ServerConfig config = given ? *given : default_config();
  auto s = std::make_unique<Server>();
  s->backend = engine::make_backend("cpu");
  s->source = std::move(source);
  s->exec = std::make_unique<engine::llama::SpanExecutor>(*s->backend, *s->source, start, end);
  config.dht_prefix = prefix_;
  Server* raw = s.get();
  on_io([this, raw, config]() -> asio::awaitable<void> {
    raw->node = lp::Libp2pNode::create(ctx_.get_executor(), lp::PrivateKey::generate_ed25519());
    raw->dht = net::DHTNode::create(raw->node.host, raw->node.kad, {});
    if (auto st = raw->node.host->listen(loopback_any_port()); !st)
      throw std::runtime_error("local swarm: server listen: " + st.error().to_string());
    raw->addr = full_addr(*raw->node.host);
    // Named, not braced inside co_await: GCC 12 mis-handles initializer lists there.
    const std::vector<lp::Multiaddr> boot{*lp::Multiaddr::from_string(bootstrap_addr_)};
    if (co_await raw->dht->bootstrap(boot) == 0)
      throw std::runtime_error("local swarm: server could not reach the bootstrap node");
    (void)co_await raw->node.kad->bootstrap(boot);
    raw->server = serve::PetalsServer::create(raw->node.host, raw->dht, *raw->exec, config);
    co_await raw->server->start();
  });
  servers_.push_back(std::move(s));
  return servers_.size() - 1;
}

serve::ServerConfig LocalSwarm::default_config() {
  serve::ServerConfig c;
  c.dtype = p2p::hivemind::DType::float32;
  return c;
}

std::string LocalSwarm::peer_id(std::size_t server) const {
  return servers_.at(server)->node.host->id().to_base58();
}

std::string LocalSwarm::server_addr(std::size_t server) const {
  return servers_.at(server)->addr;
}

std::size_t LocalSwarm::index_of(const std::string& peer) const {
  for (std::size_t i = 0; i < servers_.size(); ++i)
    if (peer_id(i) == peer) return i;
  throw std::out_of_range("local swarm: no server " + peer);
}

void LocalSwarm::kill(std::size_t server) {
  Server* s = servers_.at(server).get();
  if (s->killed) return;
  on_io([s]() -> asio::awaitable<void> {
    s->killed = true;
    co_await s->node.host->close();
  });
}

serve::ServerStats LocalSwarm::stats(std::size_t server) const {
  return servers_.at(server)->server->stats();
}

}  // namespace kwaai::client
