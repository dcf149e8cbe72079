#include "p2p/libp2p/protocols/identify.hpp"

#include <spdlog/spdlog.h>

#include "p2p/libp2p/delimited.hpp"
#include "p2p/libp2p/host/event.hpp"
#include "p2p/libp2p/host/stream_io.hpp"
#include "p2p/libp2p/proto/identify.pb.h"

namespace kwaai::p2p::libp2p {

namespace {
constexpr auto kIdentifyTimeout = std::chrono::seconds(30);
}

std::shared_ptr<IdentifyService> IdentifyService::attach(const std::shared_ptr<Host>& host) {
  auto svc = std::shared_ptr<IdentifyService>(new IdentifyService(host));
  std::weak_ptr<IdentifyService> w = svc;
  host->set_handler(std::string(kIdentifyProtocol),
                    [svc](YamuxStreamPtr s, ConnectionPtr c) { return svc->serve(s, c); });
  host->set_handler(std::string(kIdentifyPushProtocol),
                    [svc](YamuxStreamPtr s, ConnectionPtr c) { return svc->serve_push(s, c); });
  host->add_connection_hook([w, ex = host->executor()](ConnectionPtr c) {
    asio::co_spawn(
        ex,
        [w, c]() -> asio::awaitable<void> {
          auto self = w.lock();
          if (!self) co_return;
          auto r = co_await self->identify(c);
          if (!r) spdlog::debug("identify {}: {}", c->peer.to_string(), r.error().to_string());
        },
        asio::detached);
  });
  host->add_protocols_changed_hook([w] {
    if (auto self = w.lock()) self->push_all();
  });
  return svc;
}

Bytes IdentifyService::build_message(const Connection& conn) const {
  pb::Identify msg;
  auto host = host_.lock();
  if (!host) return {};
  msg.set_protocolversion(host->config().protocol_version);
  msg.set_agentversion(host->config().agent_version);
  const Bytes key = host->identity().public_key().to_protobuf();
  msg.set_publickey(std::string(key.begin(), key.end()));
  for (const auto& a : host->announce_addrs()) {
    const Bytes b = a.to_bytes();
    msg.add_listenaddrs(std::string(b.begin(), b.end()));
  }
  const Bytes obs = conn.remote_addr.to_bytes();
  msg.set_observedaddr(std::string(obs.begin(), obs.end()));
  for (const auto& p : host->protocols()) msg.add_protocols(p);
  // No signedPeerRecord: go stores no addresses from a record it cannot validate, and
  // listenAddrs alone are accepted by go and js.
  return serialize(msg);
}

asio::awaitable<void> IdentifyService::serve(YamuxStreamPtr s, ConnectionPtr conn) {
  auto self = shared_from_this();
  auto st = co_await write_delimited(*s, build_message(*conn));
  if (!st) {
    s->reset();
    co_return;
  }
  (void)s->close_write();  // FIN: go and js read until EOF
}

asio::awaitable<Status> IdentifyService::read_messages(YamuxStream& s, const Connection& conn,
                                                       PeerInfo& info, bool partial) {
  for (std::size_t i = 0;; ++i) {
    auto body = co_await read_delimited(s, kIdentifyMaxMessage);
    if (!body) co_return std::move(body).error();
    if (!*body) break;
    if (i >= kIdentifyMaxMessages)
      co_return make_error(Errc::kTooLarge, "more than " + std::to_string(kIdentifyMaxMessages) +
                                                " identify messages");
    pb::Identify msg;
    if (auto ps = parse(**body, msg, kIdentifyMaxMessage); !ps) co_return ps;
    if (msg.has_publickey()) {
      const std::string& k = msg.publickey();
      auto key = PublicKey::from_protobuf(
          ByteView(reinterpret_cast<const std::uint8_t*>(k.data()), k.size()));
      if (!key) co_return std::move(key).error();
      if (!conn.peer.matches(*key))
        co_return make_error(Errc::kPeerIdMismatch, "identify public key is not the peer's");
      info.public_key = *key;
    }
    if (msg.has_agentversion()) info.agent_version = msg.agentversion();
    if (msg.has_protocolversion()) info.protocol_version = msg.protocolversion();
    if (msg.protocols_size() > 0 || !partial) {
      info.protocols.assign(msg.protocols().begin(), msg.protocols().end());
    }
    for (const auto& a : msg.listenaddrs()) {
      // One unparseable address (an unknown transport) drops only that address.
      auto m = Multiaddr::from_bytes(
          ByteView(reinterpret_cast<const std::uint8_t*>(a.data()), a.size()));
      if (m) info.addrs.push_back(std::move(*m));
    }
    if (msg.has_observedaddr()) {
      const std::string& o = msg.observedaddr();
      auto m = Multiaddr::from_bytes(
          ByteView(reinterpret_cast<const std::uint8_t*>(o.data()), o.size()));
      if (m) info.observed_addr = std::move(*m);
    }
  }
  co_return Status{};
}

void IdentifyService::notify(const ConnectionPtr& conn, const PeerInfo& info) {
  ++completed_;
  for (auto& fn : listeners_) fn(conn, info);
}

asio::awaitable<Result<PeerInfo>> IdentifyService::identify(ConnectionPtr conn) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return make_error(Errc::kClosed, "host gone");
  std::vector<std::string> protos{std::string(kIdentifyProtocol)};
  auto ns = co_await host->new_stream(conn, protos);
  if (!ns) co_return std::move(ns).error();
  auto stream = ns->stream;
  Watchdog dog(host->executor(), kIdentifyTimeout, [stream] { stream->reset(); });
  PeerInfo info;
  auto st = co_await read_messages(*stream, *conn, info, false);
  if (!st) {
    stream->reset();
    co_return std::move(st).error();
  }
  (void)stream->close_write();
  host->peer_store().set_identify(conn->peer, info);
  auto stored = host->peer_store().get(conn->peer);
  notify(conn, stored ? *stored : info);
  co_return stored ? *stored : info;
}

asio::awaitable<void> IdentifyService::serve_push(YamuxStreamPtr s, ConnectionPtr conn) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return;
  PeerInfo info = host->peer_store().get(conn->peer).value_or(PeerInfo{});
  info.addrs.clear();
  auto st = co_await read_messages(*s, *conn, info, true);
  if (!st) {
    spdlog::debug("identify-push from {}: {}", conn->peer.to_string(), st.error().to_string());
    s->reset();
    co_return;
  }
  (void)s->close_write();
  host->peer_store().set_identify(conn->peer, info);
  notify(conn, info);
}

void IdentifyService::push_all() {
  auto host = host_.lock();
  if (!host) return;
  for (auto& c : host->connections()) {
    if (!host->peer_store().supports(c->peer, kIdentifyPushProtocol)) continue;
    asio::co_spawn(
        host->executor(),
        [self = shared_from_this(), host, c]() -> asio::awaitable<void> {
          std::vector<std::string> protos{std::string(kIdentifyPushProtocol)};
          auto ns = co_await host->new_stream(c, protos);
          if (!ns) co_return;
          if (co_await write_delimited(*ns->stream, self->build_message(*c)))
            (void)ns->stream->close_write();
        },
        asio::detached);
  }
}

}  // namespace kwaai::p2p::libp2p
