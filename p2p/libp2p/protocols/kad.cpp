#include "p2p/libp2p/protocols/kad.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "p2p/libp2p/delimited.hpp"
#include "p2p/libp2p/host/event.hpp"
#include "p2p/libp2p/host/stream_io.hpp"
#include "p2p/libp2p/proto/dht.pb.h"

namespace kwaai::p2p::libp2p {

namespace {
ByteView view(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string str(const Bytes& b) {
  return std::string(b.begin(), b.end());
}
}  // namespace

KadKey kad_key_of_bytes(ByteView key) {
  KadKey k{};
  crypto_hash_sha256(k.data(), key.data(), key.size());
  return k;
}

KadKey kad_key(const PeerId& id) {
  return kad_key_of_bytes(id.bytes());
}

int common_prefix_length(const KadKey& a, const KadKey& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::uint8_t x = a[i] ^ b[i];
    if (x != 0) return static_cast<int>(i * 8) + __builtin_clz(x) - 24;
  }
  return 256;
}

bool kad_closer(const KadKey& target, const KadKey& a, const KadKey& b) {
  for (std::size_t i = 0; i < target.size(); ++i) {
    const std::uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
    if (da != db) return da < db;
  }
  return false;
}

RoutingTable::RoutingTable(const PeerId& self) : self_key_(kad_key(self)), self_(self) {}

bool RoutingTable::add(const PeerId& peer, const std::vector<Multiaddr>& addrs) {
  if (peer == self_) return false;
  const KadKey key = kad_key(peer);
  auto& bucket = buckets_[static_cast<std::size_t>(common_prefix_length(self_key_, key))];
  for (auto it = bucket.begin(); it != bucket.end(); ++it) {
    if (it->peer.id == peer) {
      Entry e = std::move(*it);
      bucket.erase(it);
      for (const auto& a : addrs)
        if (std::find(e.peer.addrs.begin(), e.peer.addrs.end(), a) == e.peer.addrs.end() &&
            e.peer.addrs.size() < 16)
          e.peer.addrs.push_back(a);
      bucket.push_back(std::move(e));
      return true;
    }
  }
  if (bucket.size() >= kBucketSize) return false;
  std::vector<Multiaddr> kept(addrs.begin(),
                              addrs.begin() + std::min<std::size_t>(addrs.size(), 16));
  bucket.push_back(Entry{KadPeer{peer, std::move(kept)}, key});
  return true;
}

void RoutingTable::remove(const PeerId& peer) {
  const KadKey key = kad_key(peer);
  auto& bucket = buckets_[static_cast<std::size_t>(common_prefix_length(self_key_, key))];
  std::erase_if(bucket, [&](const Entry& e) { return e.peer.id == peer; });
}

std::vector<KadPeer> RoutingTable::closest(const KadKey& target, std::size_t count) const {
  std::vector<const Entry*> all;
  for (const auto& b : buckets_)
    for (const auto& e : b) all.push_back(&e);
  const std::size_t n = std::min(count, all.size());
  std::partial_sort(
      all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
      [&](const Entry* a, const Entry* b) { return kad_closer(target, a->key, b->key); });
  std::vector<KadPeer> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(all[i]->peer);
  return out;
}

std::optional<KadPeer> RoutingTable::find(const PeerId& peer) const {
  const auto& bucket =
      buckets_[static_cast<std::size_t>(common_prefix_length(self_key_, kad_key(peer)))];
  for (const auto& e : bucket)
    if (e.peer.id == peer) return e.peer;
  return std::nullopt;
}

std::size_t RoutingTable::size() const {
  std::size_t n = 0;
  for (const auto& b : buckets_) n += b.size();
  return n;
}

std::shared_ptr<KadService> KadService::attach(const std::shared_ptr<Host>& host,
                                               const std::shared_ptr<IdentifyService>& identify,
                                               Options options) {
  auto svc = std::shared_ptr<KadService>(new KadService(host, options, host->id()));
  if (options.server_mode)
    host->set_handler(std::string(kKadProtocol),
                      [svc](YamuxStreamPtr s, ConnectionPtr c) { return svc->serve(s, c); });
  std::weak_ptr<KadService> w = svc;
  identify->add_listener([w](const ConnectionPtr& c, const PeerInfo& info) {
    auto self = w.lock();
    if (!self) return;
    // Only peers that serve the DHT belong in routing tables (go's validRTPeer).
    if (std::find(info.protocols.begin(), info.protocols.end(), kKadProtocol) !=
        info.protocols.end())
      self->table_.add(c->peer, info.addrs);
    else
      self->table_.remove(c->peer);
  });
  return svc;
}

asio::awaitable<void> KadService::serve(YamuxStreamPtr s, ConnectionPtr conn) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return;
  for (std::size_t i = 0; i < options_.max_requests_per_stream; ++i) {
    // go resets kad streams idle for a minute; so do we.
    Watchdog dog(host->executor(), std::chrono::seconds(60), [s] { s->reset(); });
    auto body = co_await read_delimited(*s, kKadMaxMessage);
    if (!body || !*body) break;
    pb::Message req;
    if (!parse(**body, req, kKadMaxMessage)) break;
    pb::Message resp;
    resp.set_type(req.type());
    if (req.type() == pb::Message::FIND_NODE) {
      resp.set_key(req.key());
      std::vector<KadPeer> peers;
      if (view(req.key()).size() == host->id().bytes().size() &&
          std::equal(host->id().bytes().begin(), host->id().bytes().end(), req.key().begin())) {
        peers.push_back(KadPeer{host->id(), host->announce_addrs()});
      }
      for (auto& p : table_.closest(kad_key_of_bytes(view(req.key())), options_.k + 1)) {
        if (p.id == conn->peer || peers.size() >= options_.k) continue;
        peers.push_back(std::move(p));
      }
      for (const auto& p : peers) {
        auto* out = resp.add_closerpeers();
        out->set_id(str(p.id.bytes()));
        for (const auto& a : p.addrs) out->add_addrs(str(a.to_bytes()));
        out->set_connection(host->connections_to(p.id).empty() && p.id != host->id()
                                ? pb::Message::NOT_CONNECTED
                                : pb::Message::CONNECTED);
      }
    } else if (req.type() != pb::Message::PING) {
      spdlog::debug("kad: unsupported request type {} from {}", static_cast<int>(req.type()),
                    conn->peer.to_string());
      break;
    }
    if (!(co_await write_delimited(*s, serialize(resp)))) co_return;
  }
  // Clean EOF ends with FIN; anything else (bad message, unsupported type) resets.
  if (s->remote_closed())
    (void)s->close_write();
  else
    s->reset();
}

asio::awaitable<Result<std::vector<KadPeer>>> KadService::find_node(const PeerId& peer,
                                                                    ByteView key) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return make_error(Errc::kClosed, "host gone");
  std::vector<std::string> protos{std::string(kKadProtocol)};
  auto ns = co_await host->new_stream(peer, protos);
  if (!ns) co_return std::move(ns).error();
  auto stream = ns->stream;
  Watchdog dog(host->executor(), options_.query_timeout, [stream] { stream->reset(); });
  pb::Message req;
  req.set_type(pb::Message::FIND_NODE);
  req.set_key(std::string(key.begin(), key.end()));
  if (auto st = co_await write_delimited(*stream, serialize(req)); !st)
    co_return std::move(st).error();
  auto body = co_await read_delimited(*stream, kKadMaxMessage);
  (void)stream->close_write();
  if (!body) co_return std::move(body).error();
  if (!*body) co_return make_error(Errc::kClosed, "kad: no response from " + peer.to_string());
  pb::Message resp;
  if (auto ps = parse(**body, resp, kKadMaxMessage); !ps) co_return std::move(ps).error();
  std::vector<KadPeer> out;
  for (const auto& p : resp.closerpeers()) {
    auto id = PeerId::from_bytes(view(p.id()));
    if (!id) continue;
    KadPeer kp{*id, {}};
    for (const auto& a : p.addrs()) {
      auto m = Multiaddr::from_bytes(view(a));
      if (m && m->tcp_endpoint()) kp.addrs.push_back(m->without_peer_id());
    }
    if (*id != host->id() && !kp.addrs.empty()) host->peer_store().add_addrs(*id, kp.addrs);
    out.push_back(std::move(kp));
  }
  co_return out;
}

asio::awaitable<Result<std::vector<KadPeer>>> KadService::lookup(ByteView key) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return make_error(Errc::kClosed, "host gone");
  const KadKey target = kad_key_of_bytes(key);
  const Bytes key_copy(key.begin(), key.end());
  enum class State { kFresh, kQuerying, kDone, kFailed };
  struct Candidate {
    KadPeer peer;
    KadKey dist_key;
    State state = State::kFresh;
  };
  struct Shared {
    explicit Shared(const asio::any_io_executor& ex) : changed(ex) {}
    std::vector<Candidate> cands;
    std::size_t inflight = 0;
    Event changed;
  };
  auto st = std::make_shared<Shared>(host->executor());
  auto add_candidate = [st, host](const KadPeer& p) {
    if (p.id == host->id()) return;
    for (const auto& c : st->cands)
      if (c.peer.id == p.id) return;
    st->cands.push_back(Candidate{p, kad_key(p.id)});
  };
  for (const auto& p : table_.closest(target, options_.k)) add_candidate(p);
  if (st->cands.empty()) co_return make_error(Errc::kState, "kad lookup: routing table is empty");
  for (;;) {
    std::sort(st->cands.begin(), st->cands.end(), [&](const Candidate& a, const Candidate& b) {
      return kad_closer(target, a.dist_key, b.dist_key);
    });
    // Query the closest not-yet-asked peers among the k best live ones, alpha at a time.
    std::size_t live = 0;
    for (auto& c : st->cands) {
      if (c.state == State::kFailed) continue;
      if (++live > options_.k) break;
      if (c.state != State::kFresh || st->inflight >= options_.alpha) continue;
      c.state = State::kQuerying;
      ++st->inflight;
      asio::co_spawn(
          host->executor(),
          [self, st, id = c.peer.id, key_copy, add_candidate]() -> asio::awaitable<void> {
            auto r = co_await self->find_node(id, key_copy);
            for (auto& x : st->cands) {
              if (x.peer.id != id) continue;
              x.state = r ? State::kDone : State::kFailed;
              break;
            }
            if (r) {
              // It answered a kad query, so it is a DHT server: keep it.
              auto known = self->host_.lock();
              if (known) self->table_.add(id, known->peer_store().addrs(id));
              for (const auto& p : *r)
                if (!p.addrs.empty()) add_candidate(p);
            } else {
              spdlog::debug("kad: query to {} failed: {}", id.to_string(), r.error().to_string());
            }
            --st->inflight;
            st->changed.notify();
          },
          asio::detached);
    }
    if (st->inflight == 0) break;
    co_await st->changed.wait();
  }
  std::vector<KadPeer> out;
  for (const auto& c : st->cands) {
    if (c.state != State::kDone) continue;
    KadPeer p = c.peer;
    p.addrs = host->peer_store().addrs(p.id);
    out.push_back(std::move(p));
    if (out.size() >= options_.k) break;
  }
  co_return out;
}

asio::awaitable<Result<KadPeer>> KadService::find_peer(const PeerId& peer) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return make_error(Errc::kClosed, "host gone");
  if (auto known = table_.find(peer); known && !known->addrs.empty()) co_return *known;
  auto r = co_await lookup(peer.bytes());
  if (!r) co_return std::move(r).error();
  auto addrs = host->peer_store().addrs(peer);
  if (!addrs.empty()) co_return KadPeer{peer, addrs};
  co_return make_error(Errc::kState, "kad: " + peer.to_string() + " not found");
}

asio::awaitable<std::size_t> KadService::bootstrap(const std::vector<Multiaddr>& peers) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return 0;
  for (const auto& a : peers) {
    auto c = co_await host->connect(a);
    if (!c) {
      spdlog::warn("kad bootstrap: {}: {}", a.to_string(), c.error().to_string());
      continue;
    }
    // Initial peers are DHT servers by configuration; identify refines this later.
    table_.add((*c)->peer, {a.without_peer_id()});
  }
  if (table_.size() > 0) {
    auto r = co_await lookup(host->id().bytes());
    if (!r) spdlog::debug("kad bootstrap lookup: {}", r.error().to_string());
  }
  co_return table_.size();
}

}  // namespace kwaai::p2p::libp2p
