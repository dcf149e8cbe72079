// Host: listeners, dialing, admission (connection manager), inbound stream dispatch.
#include "p2p/libp2p/host/host.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/v6_only.hpp>

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "p2p/libp2p/host/negotiate.hpp"

namespace kwaai::p2p::libp2p {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

Multiaddr endpoint_to_multiaddr(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  auto m = Multiaddr::from_ip_tcp(addr.to_string(), ep.port());
  return m ? *m : Multiaddr{};
}

std::shared_ptr<Host> Host::create(asio::any_io_executor ex, PrivateKey identity,
                                   HostConfig config) {
  auto h = std::shared_ptr<Host>(new Host(std::move(ex), std::move(identity), config));
  if (h->config_.idle_timeout.count() > 0) {
    asio::co_spawn(
        h->executor_,
        [w = std::weak_ptr<Host>(h)]() -> asio::awaitable<void> {
          if (auto self = w.lock()) co_await self->idle_loop();
        },
        asio::detached);
  }
  return h;
}

Host::Host(asio::any_io_executor ex, PrivateKey identity, HostConfig config)
    : executor_(std::move(ex)),
      identity_(std::move(identity)),
      id_(PeerId::from_public_key(identity_.public_key())),
      config_(std::move(config)) {}

Host::~Host() {
  for (auto& a : acceptors_) {
    boost::system::error_code ec;
    a->close(ec);
  }
  for (auto& [id, c] : conns_) {
    c->session->set_on_close(nullptr);
    c->session->close("host destroyed");
  }
}

Status Host::listen(const Multiaddr& addr) {
  auto hp = addr.tcp_endpoint();
  if (!hp)
    return make_error(hp.error().code, "listen " + addr.to_string() + ": " + hp.error().message);
  if (hp->kind != HostPort::Kind::kIp4 && hp->kind != HostPort::Kind::kIp6)
    return make_error(Errc::kUnsupported,
                      "listen " + addr.to_string() + ": need an ip4/ip6 address");
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->host, ec);
  if (ec) return make_error(Errc::kMalformed, "listen " + addr.to_string() + ": " + ec.message());
  auto acc = std::make_shared<tcp::acceptor>(executor_);
  tcp::endpoint ep(ip, hp->port);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && ip.is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(Errc::kIo, "listen " + addr.to_string() + ": " + ec.message());
  acceptors_.push_back(acc);
  asio::co_spawn(
      executor_,
      [w = weak_from_this(), acc]() -> asio::awaitable<void> {
        if (auto self = w.lock()) co_await self->accept_loop(acc);
      },
      asio::detached);
  spdlog::debug("host {}: listening on {}", id_.to_string(),
                endpoint_to_multiaddr(acc->local_endpoint(ec)).to_string());
  return Status{};
}

std::vector<Multiaddr> Host::listen_addrs() const {
  std::vector<Multiaddr> out;
  for (const auto& a : acceptors_) {
    boost::system::error_code ec;
    auto ep = a->local_endpoint(ec);
    if (!ec) out.push_back(endpoint_to_multiaddr(ep));
  }
  return out;
}

std::vector<Multiaddr> Host::announce_addrs() const {
  // Unspecified binds (0.0.0.0, ::) are announced on every configured interface address of
  // that family (loopback included, as go does; link-local IPv6 is skipped: unusable without
  // a zone).
  std::vector<asio::ip::address> v4s, v6s;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i; i = i->ifa_next) {
      if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
      if (i->ifa_addr->sa_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
        v4s.push_back(asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)));
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), sin6->sin6_addr.s6_addr, b.size());
        asio::ip::address_v6 a(b);
        if (!a.is_link_local()) v6s.push_back(a);
      }
    }
    freeifaddrs(ifs);
  }
  if (v4s.empty()) v4s.push_back(asio::ip::address_v4::loopback());
  if (v6s.empty()) v6s.push_back(asio::ip::address_v6::loopback());
  std::vector<Multiaddr> out;
  for (const auto& a : acceptors_) {
    boost::system::error_code ec;
    auto ep = a->local_endpoint(ec);
    if (ec) continue;
    if (!ep.address().is_unspecified()) {
      out.push_back(endpoint_to_multiaddr(ep));
      continue;
    }
    for (const auto& ip : ep.address().is_v4() ? v4s : v6s) {
      auto m = endpoint_to_multiaddr(tcp::endpoint(ip, ep.port()));
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
    }
  }
  return out;
}

void Host::set_handler(const std::string& protocol, Handler handler) {
  handlers_[protocol] = std::move(handler);
  for (auto& fn : proto_hooks_) fn();
}

void Host::remove_handler(const std::string& protocol) {
  if (handlers_.erase(protocol))
    for (auto& fn : proto_hooks_) fn();
}

std::vector<std::string> Host::protocols() const {
  std::vector<std::string> out;
  for (const auto& [p, h] : handlers_) out.push_back(p);
  return out;
}

std::vector<ConnectionPtr> Host::connections() const {
  std::vector<ConnectionPtr> out;
  for (const auto& [id, c] : conns_) out.push_back(c);
  return out;
}

std::vector<ConnectionPtr> Host::connections_to(const PeerId& peer) const {
  std::vector<ConnectionPtr> out;
  for (const auto& [id, c] : conns_)
    if (c->peer == peer && !c->session->closed()) out.push_back(c);
  return out;
}

std::size_t Host::peer_stream_count(const PeerId& peer) const {
  std::size_t n = 0;
  for (const auto& c : connections_to(peer)) n += c->session->stream_count();
  return n;
}

asio::awaitable<void> Host::accept_loop(std::shared_ptr<tcp::acceptor> acc) {
  auto self = shared_from_this();
  while (!closed_ && acc->is_open()) {
    boost::system::error_code ec;
    tcp::socket sock = co_await acc->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || closed_) co_return;
      spdlog::warn("host: accept failed: {}", ec.message());
      continue;
    }
    if (pending_upgrades_ >= config_.max_pending_upgrades ||
        conns_.size() >= config_.max_connections) {
      spdlog::warn("host: refusing inbound connection: {} handshakes pending, {} connections",
                   pending_upgrades_, conns_.size());
      sock.close(ec);
      continue;
    }
    asio::co_spawn(executor_, handle_inbound(std::move(sock)), asio::detached);
  }
}

asio::awaitable<void> Host::handle_inbound(tcp::socket socket) {
  auto self = shared_from_this();
  ++pending_upgrades_;
  boost::system::error_code ec;
  auto remote = endpoint_to_multiaddr(socket.remote_endpoint(ec));
  auto local = endpoint_to_multiaddr(socket.local_endpoint(ec));
  UpgradeOptions opts{config_.yamux, config_.early_muxer, config_.handshake_timeout};
  auto up = co_await upgrade_connection(std::make_unique<TcpStream>(std::move(socket)), false,
                                        identity_, std::nullopt, opts);
  --pending_upgrades_;
  if (!up) {
    spdlog::warn("host: inbound upgrade from {} failed: {}", remote.to_string(),
                 up.error().to_string());
    co_return;
  }
  auto c = admit(std::move(*up), remote, local, true);
  if (!c) spdlog::warn("host: inbound connection refused: {}", c.error().to_string());
}

Result<ConnectionPtr> Host::admit(Upgraded up, Multiaddr remote, Multiaddr local, bool inbound) {
  const std::size_t to_peer = connections_to(up.peer).size();
  if (closed_ || conns_.size() >= config_.max_connections ||
      to_peer >= config_.max_connections_per_peer) {
    up.session->close("connection limit");
    return make_error(Errc::kResourceLimit, up.peer.to_string() + ": " + std::to_string(to_peer) +
                                                " connections to peer, " +
                                                std::to_string(conns_.size()) + " in total");
  }
  auto c = std::make_shared<Connection>(up.peer, up.remote_key);
  c->id = next_conn_id_++;
  c->session = up.session;
  c->remote_addr = std::move(remote);
  c->local_addr = std::move(local);
  c->inbound = inbound;
  c->early_muxer = up.early_muxer;
  c->opened = Clock::now();
  c->idle_since = c->opened;
  conns_[c->id] = c;
  std::weak_ptr<Host> wh = weak_from_this();
  std::weak_ptr<Connection> wc = c;
  const auto cid = c->id;
  const std::string peer_text = c->peer.to_string();
  c->session->set_on_close([wh, cid, peer_text](const std::string& reason) {
    spdlog::debug("host: connection {} to {} closed: {}", cid, peer_text, reason);
    if (auto h = wh.lock()) h->conns_.erase(cid);
  });
  c->session->start([wh, wc](YamuxStreamPtr s) {
    auto h = wh.lock();
    auto conn = wc.lock();
    if (!h || !conn) {
      s->reset();
      return;
    }
    h->on_inbound_stream(conn, std::move(s));
  });
  spdlog::debug("host: {} connection {} to {} via {}", inbound ? "inbound" : "outbound", c->id,
                peer_text, c->remote_addr.to_string());
  for (auto& hook : hooks_) hook(c);
  return c;
}

void Host::on_inbound_stream(const ConnectionPtr& conn, YamuxStreamPtr stream) {
  if (peer_stream_count(conn->peer) > config_.max_streams_per_peer) {
    spdlog::debug("host: peer {} over its stream limit, resetting stream", conn->peer.to_string());
    stream->reset();
    return;
  }
  asio::co_spawn(executor_, serve_stream(conn, std::move(stream)), asio::detached);
}

asio::awaitable<void> Host::serve_stream(ConnectionPtr conn, YamuxStreamPtr stream) {
  auto self = shared_from_this();
  Watchdog dog(executor_, config_.negotiation_timeout, [stream] { stream->reset(); });
  std::function<bool(std::string_view)> supported = [this](std::string_view p) {
    return handlers_.count(std::string(p)) > 0;
  };
  auto proto = co_await negotiate_inbound(*stream, *stream, supported, protocols(),
                                          [&](ByteView b) { stream->unread(b); });
  dog.disarm();
  if (!proto) {
    spdlog::debug("host: inbound stream from {}: {}", conn->peer.to_string(),
                  proto.error().to_string());
    stream->reset();
    co_return;
  }
  auto it = handlers_.find(*proto);
  if (it == handlers_.end()) {
    stream->reset();
    co_return;
  }
  Handler handler = it->second;  // copy: the registry may change while the handler runs
  try {
    co_await handler(stream, conn);
  } catch (const std::exception& e) {
    spdlog::warn("host: handler for {} failed: {}", *proto, e.what());
    stream->reset();
  }
}

asio::awaitable<Result<ConnectionPtr>> Host::connect(const Multiaddr& addr) {
  auto self = shared_from_this();
  if (closed_) co_return make_error(Errc::kClosed, "host closed");
  auto expected = addr.peer_id();
  if (expected) {
    for (auto& c : connections_to(*expected))
      if (!c->session->remote_went_away()) co_return c;
  }
  auto hp = addr.tcp_endpoint();
  if (!hp)
    co_return make_error(hp.error().code, "dial " + addr.to_string() + ": " + hp.error().message);
  tcp::endpoint ep;
  boost::system::error_code ec;
  if (hp->kind == HostPort::Kind::kIp4 || hp->kind == HostPort::Kind::kIp6) {
    ep = tcp::endpoint(asio::ip::make_address(hp->host, ec), hp->port);
  } else {
    tcp::resolver resolver(executor_);
    auto results = co_await resolver.async_resolve(hp->host, std::to_string(hp->port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      bool found = false;
      for (const auto& r : results) {
        const bool v4 = r.endpoint().address().is_v4();
        if ((hp->kind == HostPort::Kind::kDns4 && !v4) || (hp->kind == HostPort::Kind::kDns6 && v4))
          continue;
        ep = r.endpoint();
        found = true;
        break;
      }
      if (!found) ec = asio::error::host_not_found;
    }
  }
  if (ec) co_return make_error(Errc::kIo, "dial " + addr.to_string() + ": " + ec.message());
  tcp::socket sock(executor_);
  {
    Watchdog dog(executor_, config_.dial_timeout, [&sock] {
      boost::system::error_code ignored;
      sock.close(ignored);
    });
    co_await sock.async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
    if (dog.fired()) ec = asio::error::timed_out;
  }
  if (ec) co_return make_error(Errc::kIo, "dial " + addr.to_string() + ": " + ec.message());
  auto local = endpoint_to_multiaddr(sock.local_endpoint(ec));
  UpgradeOptions opts{config_.yamux, config_.early_muxer, config_.handshake_timeout};
  auto up = co_await upgrade_connection(std::make_unique<TcpStream>(std::move(sock)), true,
                                        identity_, expected, opts);
  if (!up)
    co_return make_error(up.error().code, "dial " + addr.to_string() + ": " + up.error().message);
  auto remote = addr.without_peer_id();
  const PeerId peer = up->peer;
  auto c = admit(std::move(*up), remote, local, false);
  if (c) peers_.add_addrs(peer, {remote});
  co_return c;
}

asio::awaitable<Result<ConnectionPtr>> Host::connect(const PeerId& peer) {
  auto self = shared_from_this();
  for (auto& c : connections_to(peer))
    if (!c->session->remote_went_away()) co_return c;
  auto addrs = peers_.addrs(peer);
  if (addrs.empty()) co_return make_error(Errc::kState, "no known address for " + peer.to_string());
  std::string errors;
  for (const auto& a : addrs) {
    auto c = co_await connect(a.with_peer_id(peer));
    if (c) co_return c;
    errors += (errors.empty() ? "" : "; ") + c.error().to_string();
  }
  co_return make_error(Errc::kIo, "dial " + peer.to_string() + ": " + errors);
}

asio::awaitable<Result<NegotiatedStream>> Host::new_stream(const PeerId& peer,
                                                           std::vector<std::string> protocols) {
  auto self = shared_from_this();
  auto c = co_await connect(peer);
  if (!c) co_return std::move(c).error();
  co_return co_await new_stream(*c, std::move(protocols));
}

asio::awaitable<Result<NegotiatedStream>> Host::new_stream(const ConnectionPtr& conn,
                                                           std::vector<std::string> protocols) {
  auto self = shared_from_this();
  auto keep = conn;
  if (peer_stream_count(conn->peer) >= config_.max_streams_per_peer)
    co_return make_error(Errc::kResourceLimit, "stream limit for " + conn->peer.to_string());
  auto s = co_await conn->session->open_stream();
  if (!s) co_return std::move(s).error();
  YamuxStreamPtr stream = *s;
  Watchdog dog(executor_, config_.negotiation_timeout, [stream] { stream->reset(); });
  auto proto = co_await negotiate_outbound(*stream, *stream, std::move(protocols),
                                           [&](ByteView b) { stream->unread(b); });
  const bool timed_out = dog.fired();
  dog.disarm();
  if (!proto) {
    // After `na` (or a failure) reset rather than wait for EOF (nim-libp2p #2800).
    stream->reset();
    if (timed_out) co_return make_error(Errc::kTimeout, "protocol negotiation timed out");
    co_return std::move(proto).error();
  }
  co_return NegotiatedStream{stream, std::move(*proto), keep};
}

asio::awaitable<void> Host::idle_loop() {
  asio::steady_timer timer(executor_);
  const auto period =
      std::max<Clock::duration>(config_.idle_timeout / 4, std::chrono::milliseconds(50));
  std::weak_ptr<Host> w = weak_from_this();
  for (;;) {
    timer.expires_after(period);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    auto self = w.lock();
    if (!self || closed_) co_return;
    const auto now = Clock::now();
    for (auto& c : connections()) {
      if (c->session->stream_count() > 0) {
        c->idle_since = now;
      } else if (now - c->idle_since > config_.idle_timeout) {
        spdlog::debug("host: closing idle connection {} to {}", c->id, c->peer.to_string());
        asio::co_spawn(executor_, c->session->shutdown(), asio::detached);
      }
    }
  }
}

asio::awaitable<void> Host::close() {
  auto self = shared_from_this();
  if (closed_) co_return;
  closed_ = true;
  for (auto& a : acceptors_) {
    boost::system::error_code ec;
    a->close(ec);
  }
  for (auto& c : connections()) asio::co_spawn(executor_, c->session->shutdown(), asio::detached);
  asio::steady_timer t(executor_);
  for (int i = 0; i < 100 && !conns_.empty(); ++i) {
    t.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace kwaai::p2p::libp2p
