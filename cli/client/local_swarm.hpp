// A Petals swarm inside one process, on loopback: a bootstrap DHT node and any number of
// PetalsServers, each with its own libp2p host, hivemind DHT node, backend and span executor,
// all on one io_context thread. For the client's end-to-end tests and the swarm bench; the
// same pieces `kwaainet dht run` + `kwaainet serve` assemble in separate processes.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/serve/petals_server.hpp"
#include "engine/core/backend.hpp"
#include "engine/llama/span_executor.hpp"
#include "engine/model/model_source.hpp"
#include "p2p/libp2p/host/node.hpp"

namespace kwaai::client {

class LocalSwarm {
 public:
  // Starts the io thread and the bootstrap node. Throws std::runtime_error if it cannot listen.
  LocalSwarm(std::string model_dir, std::string dht_prefix);
  ~LocalSwarm();  // shuts every server down, closes every host, joins the thread
  LocalSwarm(const LocalSwarm&) = delete;
  LocalSwarm& operator=(const LocalSwarm&) = delete;

  // A server for blocks [start, end) on its own CPU backend; returns once it is ONLINE.
  // `config` fields other than dht_prefix are used as given; without one, default_config().
  std::size_t add_server(std::uint32_t start, std::uint32_t end,
                         std::optional<serve::ServerConfig> config = std::nullopt);
  // Same, with weights from `source` (e.g. a SyntheticSource) instead of model_dir.
  std::size_t add_server(std::unique_ptr<engine::ModelSource> source, std::uint32_t start,
                         std::uint32_t end,
                         std::optional<serve::ServerConfig> config = std::nullopt);
  // ServerConfig defaults with float32 outputs, so hidden states cross servers exactly and
  // greedy ids can be compared with the single-process reference.
  static serve::ServerConfig default_config();
  // The bootstrap node's address, /ip4/127.0.0.1/tcp/N/p2p/<id>.
  std::vector<std::string> initial_peers() const { return {bootstrap_addr_}; }
  std::string peer_id(std::size_t server) const;
  std::string server_addr(std::size_t server) const;       // /ip4/127.0.0.1/tcp/N/p2p/<id>
  std::size_t index_of(const std::string& peer_id) const;  // throws std::out_of_range
  // Stops a server the hard way: its host closes every connection at once (no OFFLINE record,
  // open sessions just vanish), as when the process is killed.
  void kill(std::size_t server);
  serve::ServerStats stats(std::size_t server) const;
  engine::llama::SpanExecutor& executor(std::size_t server) { return *servers_.at(server)->exec; }
  const std::string& dht_prefix() const { return prefix_; }

 private:
  struct Server {
    std::unique_ptr<engine::Backend> backend;
    std::unique_ptr<engine::ModelSource> source;
    std::unique_ptr<engine::llama::SpanExecutor> exec;
    p2p::libp2p::Libp2pNode node;
    std::shared_ptr<p2p::hivemind::net::DHTNode> dht;
    std::shared_ptr<serve::PetalsServer> server;
    std::string addr;  // full listen multiaddr, fixed once listening
    bool killed = false;
  };
  // Runs a coroutine on the io thread and waits for it (exceptions propagate).
  template <class F>
  void on_io(F make);

  std::string model_dir_, prefix_;
  boost::asio::io_context ctx_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  p2p::libp2p::Libp2pNode boot_;
  std::shared_ptr<p2p::hivemind::net::DHTNode> boot_dht_;
  std::string bootstrap_addr_;
  std::vector<std::unique_ptr<Server>> servers_;
};

}  // namespace kwaai::client
