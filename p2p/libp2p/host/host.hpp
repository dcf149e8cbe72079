// The libp2p host: TCP listeners and dialer, the connection upgrade, a connection manager with
// limits and timeouts, per-stream protocol negotiation and a protocol handler registry.
//
// Threading: a Host and everything it owns run on one single-threaded executor (one
// io_context thread); public methods must be called from that executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2p/libp2p/crypto/keys.hpp"
#include "p2p/libp2p/host/noise_stream.hpp"
#include "p2p/libp2p/host/peer_store.hpp"
#include "p2p/libp2p/host/yamux_session.hpp"
#include "p2p/libp2p/multiaddr.hpp"
#include "p2p/libp2p/peer_id.hpp"

namespace kwaai::p2p::libp2p {

struct HostConfig {
  std::string agent_version = "kwaainet/0.1.0";
  std::string protocol_version = "ipfs/0.1.0";
  YamuxConfig yamux;
  bool early_muxer = true;
  std::chrono::milliseconds dial_timeout{10000};
  std::chrono::milliseconds handshake_timeout{15000};    // go's inbound upgrade limit
  std::chrono::milliseconds negotiation_timeout{10000};  // per-stream multistream (go: 10 s)
  // Connections with no open streams for this long are closed (0 = never).
  std::chrono::milliseconds idle_timeout{0};
  std::size_t max_connections = 512;
  std::size_t max_connections_per_peer = 8;  // go's per-peer default
  std::size_t max_pending_upgrades = 64;     // concurrent inbound handshakes
  std::size_t max_streams_per_peer = 2048;   // across that peer's connections
};

struct Connection {
  Connection(PeerId p, PublicKey k) : peer(std::move(p)), remote_key(std::move(k)) {}
  std::uint64_t id = 0;
  PeerId peer;
  PublicKey remote_key;
  std::shared_ptr<YamuxSession> session;
  Multiaddr remote_addr;  // /ip4/../tcp/.. without /p2p
  Multiaddr local_addr;
  bool inbound = false;
  bool early_muxer = false;
  std::chrono::steady_clock::time_point opened;
  std::chrono::steady_clock::time_point idle_since;  // last time it had open streams
};
using ConnectionPtr = std::shared_ptr<Connection>;

struct NegotiatedStream {
  YamuxStreamPtr stream;
  std::string protocol;
  ConnectionPtr connection;
};

class Host : public std::enable_shared_from_this<Host> {
 public:
  using Handler = std::function<asio::awaitable<void>(YamuxStreamPtr, ConnectionPtr)>;
  using ConnectionHook = std::function<void(ConnectionPtr)>;

  static std::shared_ptr<Host> create(asio::any_io_executor ex, PrivateKey identity,
                                      HostConfig config = {});
  ~Host();

  const PeerId& id() const { return id_; }
  const PrivateKey& identity() const { return identity_; }
  const HostConfig& config() const { return config_; }
  asio::any_io_executor executor() const { return executor_; }
  PeerStore& peer_store() { return peers_; }

  // Binds a /ip4|ip6/<addr>/tcp/<port> listener (port 0 = any) and starts accepting.
  Status listen(const Multiaddr& addr);
  // Bound addresses (actual ports), without /p2p. 0.0.0.0 / :: are reported as bound.
  std::vector<Multiaddr> listen_addrs() const;
  // Addresses to announce: listen addrs with unspecified IPs replaced by loopback + observed.
  std::vector<Multiaddr> announce_addrs() const;

  void set_handler(const std::string& protocol, Handler handler);
  void remove_handler(const std::string& protocol);
  std::vector<std::string> protocols() const;
  // Called for every new (upgraded, started) connection, e.g. to run identify.
  void add_connection_hook(ConnectionHook hook) { hooks_.push_back(std::move(hook)); }
  // Called when the set of protocols changes (identify-push).
  void add_protocols_changed_hook(std::function<void()> fn) {
    proto_hooks_.push_back(std::move(fn));
  }

  // Dials a multiaddr; a /p2p/<id> suffix is verified against the Noise identity.
  asio::awaitable<Result<ConnectionPtr>> connect(const Multiaddr& addr);
  // Reuses a live connection to `peer`, else dials its known addresses in turn.
  asio::awaitable<Result<ConnectionPtr>> connect(const PeerId& peer);
  // Opens a stream on a connection to `peer` and negotiates the first supported protocol.
  asio::awaitable<Result<NegotiatedStream>> new_stream(const PeerId& peer,
                                                       std::vector<std::string> protocols);
  asio::awaitable<Result<NegotiatedStream>> new_stream(const ConnectionPtr& conn,
                                                       std::vector<std::string> protocols);

  std::vector<ConnectionPtr> connections() const;
  std::vector<ConnectionPtr> connections_to(const PeerId& peer) const;
  // Go-away on every connection, stop listening. Handlers may still be finishing.
  asio::awaitable<void> close();
  bool closed() const { return closed_; }

 private:
  Host(asio::any_io_executor ex, PrivateKey identity, HostConfig config);
  asio::awaitable<void> accept_loop(std::shared_ptr<asio::ip::tcp::acceptor> acc);
  asio::awaitable<void> handle_inbound(asio::ip::tcp::socket socket);
  asio::awaitable<void> idle_loop();
  Result<ConnectionPtr> admit(Upgraded up, Multiaddr remote, Multiaddr local, bool inbound);
  void on_inbound_stream(const ConnectionPtr& conn, YamuxStreamPtr stream);
  asio::awaitable<void> serve_stream(ConnectionPtr conn, YamuxStreamPtr stream);
  std::size_t peer_stream_count(const PeerId& peer) const;

  asio::any_io_executor executor_;
  PrivateKey identity_;
  PeerId id_;
  HostConfig config_;
  PeerStore peers_;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::map<std::string, Handler> handlers_;
  std::vector<ConnectionHook> hooks_;
  std::vector<std::function<void()>> proto_hooks_;
  std::map<std::uint64_t, ConnectionPtr> conns_;
  std::uint64_t next_conn_id_ = 1;
  std::size_t pending_upgrades_ = 0;
  bool closed_ = false;
};

// "/ip4/1.2.3.4/tcp/5" for an endpoint.
Multiaddr endpoint_to_multiaddr(const asio::ip::tcp::endpoint& ep);

}  // namespace kwaai::p2p::libp2p
