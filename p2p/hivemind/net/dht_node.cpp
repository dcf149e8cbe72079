#include "p2p/hivemind/net/dht_node.hpp"

#include <spdlog/spdlog.h>

#include <cmath>

#include "p2p/hivemind/msgpack_codec.hpp"

namespace kwaai::p2p::hivemind::net {

double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

DHTID random_dht_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (std::uint64_t{std::random_device{}()} << 32)};
  DHTID::Raw raw;
  for (auto& b : raw) b = static_cast<std::uint8_t>(rng());
  return DHTID::from_random(raw);
}

DHTNode::DHTNode(std::weak_ptr<lp::Host> host, std::shared_ptr<lp::KadService> kad,
                 DHTNodeConfig config, DHTID id)
    : host_(std::move(host)),
      kad_(std::move(kad)),
      config_(std::move(config)),
      own_id_(id),
      clock_(config_.clock ? config_.clock : DhtClock(unix_time)),
      table_(own_id_, RoutingTableConfig{config_.bucket_size, config_.depth_modulo, 20}),
      storage_(clock_, config_.storage_limits),
      cache_(clock_, config_.storage_limits) {}

DHTNode::~DHTNode() = default;

std::shared_ptr<DHTNode> DHTNode::create(const std::shared_ptr<lp::Host>& host,
                                         std::shared_ptr<lp::KadService> kad,
                                         DHTNodeConfig config) {
  const DHTID id = config.node_id ? *config.node_id : random_dht_id();
  auto node = std::shared_ptr<DHTNode>(new DHTNode(host, std::move(kad), std::move(config), id));
  if (!node->config_.client_mode) node->register_handlers();
  if (node->config_.ping_new_connections) {
    std::weak_ptr<DHTNode> weak = node;
    host->add_connection_hook([weak](lp::ConnectionPtr conn) {
      auto self = weak.lock();
      if (!self || self->stopped_ || conn->inbound) return;  // outbound: we chose to dial it
      asio::co_spawn(
          self->host().executor(),
          [self, peer = conn->peer]() -> asio::awaitable<void> {
            if (self->table_.node_of(peer.bytes())) co_return;
            (void)co_await self->add_peer(peer);
          },
          asio::detached);
    });
  }
  return node;
}

void DHTNode::register_handlers() {
  auto host = host_.lock();
  server_ = RpcServer::create(host, config_.rpc_limits);
  std::weak_ptr<DHTNode> weak = weak_from_this();
  auto bind = [weak](auto method) {
    return [weak, method](const lp::PeerId& caller, Bytes req) -> asio::awaitable<UnaryOutcome> {
      auto self = weak.lock();
      if (!self) co_return UnaryOutcome::failure("RuntimeError('DHT node stopped')");
      co_return co_await ((*self).*method)(caller, std::move(req));
    };
  };
  server_->add_unary(kRpcPing, bind(&DHTNode::on_ping));
  server_->add_unary(kRpcStore, bind(&DHTNode::on_store));
  server_->add_unary(kRpcFind, bind(&DHTNode::on_find));
}

void DHTNode::shutdown() {
  stopped_ = true;
  if (server_) server_->remove_all();
}

// ---------------------------------------------------------------------------------------------
// Routing table bookkeeping

void DHTNode::node_alive(const DHTID& node, const Bytes& peer) {
  if (node == own_id_ || peer.empty()) return;
  auto r = table_.add_or_update(node, peer, now());
  if (!r.ping_candidate || stopped_) return;
  // A full bucket: hivemind pings its least-recently-seen entry and evicts it if silent.
  auto cand = *r.ping_candidate;
  auto pid = lp::PeerId::from_bytes(cand.peer_id);
  if (!pid) {
    table_.on_ping_result(cand.node_id, false, now());
    return;
  }
  asio::co_spawn(
      host().executor(),
      [self = shared_from_this(), cand, peer = *pid]() -> asio::awaitable<void> {
        auto r = co_await self->call_ping(peer, false);
        const bool alive = r && r->peer().node_id() == std::string(cand.node_id.raw().begin(),
                                                                   cand.node_id.raw().end());
        self->table_.on_ping_result(cand.node_id, alive, self->now());
      },
      asio::detached);
}

void DHTNode::node_failed(const Bytes& peer) {
  if (auto id = table_.node_of(peer)) table_.remove(*id);
}

void DHTNode::note_failure(const Bytes& peer) {
  std::string k(peer.begin(), peer.end());
  if (blacklist_.size() >= config_.max_blacklisted && !blacklist_.count(k)) {
    // Forget strikes that have run out before refusing to track a new one.
    const double t = now();
    std::erase_if(blacklist_, [t](const auto& kv) { return kv.second.until <= t; });
    if (blacklist_.size() >= config_.max_blacklisted) return;
  }
  auto& s = blacklist_[k];
  s.until = now() + config_.blacklist_base_s * std::pow(config_.blacklist_rate, s.failures);
  ++s.failures;
}

void DHTNode::note_success(const Bytes& peer) {
  blacklist_.erase(std::string(peer.begin(), peer.end()));
}

bool DHTNode::blacklisted(const Bytes& peer) const {
  auto it = blacklist_.find(std::string(peer.begin(), peer.end()));
  return it != blacklist_.end() && it->second.until > now();
}

// ---------------------------------------------------------------------------------------------
// Client calls

asio::awaitable<void> DHTNode::resolve(const lp::PeerId& peer) {
  auto host = host_.lock();
  if (!host || !kad_) co_return;
  if (!host->connections_to(peer).empty() || !host->peer_store().addrs(peer).empty()) co_return;
  auto found = co_await kad_->find_peer(peer);
  if (found) host->peer_store().add_addrs(peer, found->addrs);
}

asio::awaitable<lp::Result<Bytes>> DHTNode::call(const lp::PeerId& peer, const char* name,
                                                 const Bytes& request) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host || host->closed()) co_return lp::make_error(lp::Errc::kClosed, "host closed");
  co_await resolve(peer);
  CallOptions opt;
  opt.timeout = config_.rpc_timeout;
  auto r = co_await call_unary(*host, peer, name, request, opt);
  if (!r) {
    node_failed(peer.bytes());
    co_return std::move(r).error();
  }
  if (r->is_error) {
    node_failed(peer.bytes());
    co_return lp::make_error(lp::Errc::kProtocol,
                             std::string(name) + " at " + peer.to_string() + ": " + r->error);
  }
  co_return std::move(r->response);
}

namespace {
template <class M>
lp::Result<M> parse_reply(lp::Result<Bytes> r) {
  if (!r) return std::move(r).error();
  auto m = parse_message<M>(*r);
  if (!m) return lp::make_error(lp::Errc::kMalformed, m.error().what());
  return std::move(*m);
}
std::optional<DHTID> node_id_of(const pb::NodeInfo& info) {
  if (info.node_id().empty()) return std::nullopt;
  auto id = DHTID::from_bytes(ByteView(reinterpret_cast<const std::uint8_t*>(info.node_id().data()),
                                       info.node_id().size()));
  if (!id) return std::nullopt;
  return *id;
}
}  // namespace

asio::awaitable<lp::Result<pb::PingResponse>> DHTNode::call_ping(const lp::PeerId& peer,
                                                                 bool validate) {
  auto self = shared_from_this();
  auto r = parse_reply<pb::PingResponse>(
      co_await call(peer, kRpcPing, serialize_message(make_ping_request(own_info_id(), validate))));
  if (r) {
    if (auto id = node_id_of(r->peer())) node_alive(*id, peer.bytes());
  }
  co_return r;
}

asio::awaitable<lp::Result<pb::StoreResponse>> DHTNode::call_store(
    const lp::PeerId& peer, const std::vector<StoreItem>& items) {
  auto self = shared_from_this();
  auto r = parse_reply<pb::StoreResponse>(
      co_await call(peer, kRpcStore, serialize_message(make_store_request(items, own_info_id()))));
  if (r) {
    if (auto id = node_id_of(r->peer())) node_alive(*id, peer.bytes());
    if (static_cast<std::size_t>(r->store_ok_size()) != items.size())
      co_return lp::make_error(lp::Errc::kProtocol, "rpc_store: store_ok list of wrong length");
  }
  co_return r;
}

asio::awaitable<lp::Result<pb::FindResponse>> DHTNode::call_find(const lp::PeerId& peer,
                                                                 const std::vector<DHTID>& keys) {
  auto self = shared_from_this();
  auto r = parse_reply<pb::FindResponse>(
      co_await call(peer, kRpcFind, serialize_message(make_find_request(keys, own_info_id()))));
  if (r) {
    if (auto id = node_id_of(r->peer())) node_alive(*id, peer.bytes());
    if (static_cast<std::size_t>(r->results_size()) != keys.size())
      co_return lp::make_error(lp::Errc::kProtocol, "rpc_find: results list of wrong length");
  }
  co_return r;
}

asio::awaitable<bool> DHTNode::add_peer(const lp::PeerId& peer) {
  auto r = co_await call_ping(peer, false);
  co_return r && !r->peer().node_id().empty();
}

asio::awaitable<std::size_t> DHTNode::bootstrap(const std::vector<lp::Multiaddr>& initial_peers) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return 0;
  std::size_t answered = 0;
  for (const auto& m : initial_peers) {
    auto pid = m.peer_id();
    if (!pid) {
      spdlog::warn("dht bootstrap: {} has no /p2p/<id>", m.to_string());
      continue;
    }
    if (auto c = co_await host->connect(m); !c) {
      spdlog::warn("dht bootstrap: dial {}: {}", m.to_string(), c.error().to_string());
      continue;
    }
    auto r = co_await call_ping(*pid, !config_.client_mode);
    if (!r) {
      spdlog::warn("dht bootstrap: ping {}: {}", m.to_string(), r.error().to_string());
      continue;
    }
    if (!config_.client_mode && !r->available())
      spdlog::warn("dht bootstrap: {} cannot reach us back (available=false)", m.to_string());
    ++answered;
  }
  if (answered > 0) (void)co_await find_nearest_nodes(own_id_);
  co_return answered;
}

// ---------------------------------------------------------------------------------------------
// Server handlers

void DHTNode::learn_caller(const pb::NodeInfo& info, const lp::PeerId& caller) {
  if (auto id = node_id_of(info)) node_alive(*id, caller.bytes());
}

asio::awaitable<UnaryOutcome> DHTNode::on_ping(const lp::PeerId& caller, Bytes request) {
  auto self = shared_from_this();
  auto req = parse_message<pb::PingRequest>(request);
  if (!req) co_return UnaryOutcome::failure("DecodeError('" + req.error().what() + "')");
  bool available = false;
  if (auto id = node_id_of(req->peer())) {
    if (req->validate()) {
      // Dial back: the caller wants to know whether it is reachable by its claimed node id.
      auto back = co_await call_ping(caller, false);
      available = back && node_id_of(back->peer()) == id;
    }
    if (available || !req->validate()) node_alive(*id, caller.bytes());
  }
  DhtServerContext ctx{own_id_, storage_, cache_, table_, config_.bucket_size};
  co_return UnaryOutcome::success(serialize_message(handle_ping(ctx, now(), available)));
}

asio::awaitable<UnaryOutcome> DHTNode::on_store(const lp::PeerId& caller, Bytes request) {
  auto req = parse_message<pb::StoreRequest>(request);
  if (!req) co_return UnaryOutcome::failure("DecodeError('" + req.error().what() + "')");
  if (req->has_peer()) learn_caller(req->peer(), caller);
  DhtServerContext ctx{own_id_, storage_, cache_, table_, config_.bucket_size};
  auto resp = handle_store(ctx, *req, caller.bytes(), now());
  if (!resp) co_return UnaryOutcome::failure("AssertionError('" + resp.error().what() + "')");
  co_return UnaryOutcome::success(serialize_message(*resp));
}

asio::awaitable<UnaryOutcome> DHTNode::on_find(const lp::PeerId& caller, Bytes request) {
  auto req = parse_message<pb::FindRequest>(request);
  if (!req) co_return UnaryOutcome::failure("DecodeError('" + req.error().what() + "')");
  if (req->has_peer()) learn_caller(req->peer(), caller);
  DhtServerContext ctx{own_id_, storage_, cache_, table_, config_.bucket_size};
  auto resp = handle_find(ctx, *req);
  if (!resp) co_return UnaryOutcome::failure("ValueError('" + resp.error().what() + "')");
  co_return UnaryOutcome::success(serialize_message(*resp));
}

}  // namespace kwaai::p2p::hivemind::net
