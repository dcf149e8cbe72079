// PetalsServer lifecycle: construction checks, the announcer (JOINING → ONLINE → periodic →
// OFFLINE), shutdown, and the numbers it reports.
#include "cli/serve/petals_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>

#include <chrono>
#include <stdexcept>

#include "cli/serve/handlers.hpp"
#include "cli/serve/server_impl.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/dht_records.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::serve {

namespace {

petals::SpanSchema make_schema(const ServerConfig& c, const engine::llama::SpanExecutor& exec) {
  petals::SpanSchema s;
  s.dht_prefix = c.dht_prefix;
  s.start_block = static_cast<std::uint32_t>(exec.start());
  s.end_block = static_cast<std::uint32_t>(exec.end());
  s.hidden_size = static_cast<std::uint32_t>(exec.config().hidden);
  s.dtype = c.dtype;
  s.compression = c.compression;
  return s;
}

asio::awaitable<void> sleep_for(asio::steady_timer& t, std::chrono::steady_clock::duration d) {
  boost::system::error_code ec;
  t.expires_after(d);
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

hm::DType resolve_server_dtype(const std::string& checkpoint_torch_dtype,
                               const std::string& requested) {
  auto named = [](const std::string& n) -> std::optional<hm::DType> {
    if (n == "bfloat16") return hm::DType::bfloat16;
    if (n == "float16") return hm::DType::float16;
    if (n == "float32") return hm::DType::float32;
    return std::nullopt;
  };
  if (requested != "auto" && !requested.empty()) {
    if (auto d = named(requested)) return *d;
    throw std::invalid_argument("--torch-dtype " + requested +
                                ": expected auto, bfloat16, float16 or float32");
  }
  // resolve_block_dtype: float32 checkpoints (and unknown ones) are served in bfloat16.
  if (checkpoint_torch_dtype == "bfloat16" || checkpoint_torch_dtype == "float16")
    return *named(checkpoint_torch_dtype);
  return hm::DType::bfloat16;
}

PetalsServer::PetalsServer(std::shared_ptr<lp::Host> host, std::shared_ptr<hm::net::DHTNode> dht,
                           engine::llama::SpanExecutor& exec, ServerConfig config)
    : config_(std::move(config)), schema_(make_schema(config_, exec)) {
  if (auto st = petals::validate_dht_prefix(config_.dht_prefix); !st)
    throw std::invalid_argument("dht prefix '" + config_.dht_prefix + "': " + st.error().message);
  if (auto st = config_.limits.validate(); !st)
    throw std::invalid_argument("server limits: " + st.error().message);
  if (exec.n_blocks() <= 0) throw std::invalid_argument("PetalsServer: empty span");
  if (config_.max_cache_tokens <= 0)
    throw std::invalid_argument("max_cache_tokens must be positive, got " +
                                std::to_string(config_.max_cache_tokens));
  if (!(config_.update_period > 0)) throw std::invalid_argument("update_period must be positive");
  if (config_.announce && !dht)
    throw std::invalid_argument("PetalsServer: announcing needs a DHT node");
  if (!host) throw std::invalid_argument("PetalsServer: no host");
  impl_ = std::make_unique<Impl>(std::move(host), std::move(dht), exec, config_);
}

std::shared_ptr<PetalsServer> PetalsServer::create(std::shared_ptr<lp::Host> host,
                                                   std::shared_ptr<hm::net::DHTNode> dht,
                                                   engine::llama::SpanExecutor& exec,
                                                   ServerConfig config) {
  return std::shared_ptr<PetalsServer>(
      new PetalsServer(std::move(host), std::move(dht), exec, std::move(config)));
}

PetalsServer::~PetalsServer() {
  if (impl_->rpc) impl_->rpc->remove_all();
  impl_->worker.stop();
}

petals::ServerInfo PetalsServer::server_info() const {
  petals::ServerInfo info;
  info.state = state_;
  info.throughput = config_.throughput;
  info.public_name = config_.public_name;
  info.version = petals::RpcInfo{}.version;
  info.network_rps = config_.network_rps;
  info.forward_rps = config_.forward_rps;
  info.inference_rps = config_.inference_rps;
  info.torch_dtype = std::string(hm::dtype_name(config_.dtype));
  info.quant_type = config_.quant_type;
  info.using_relay = config_.using_relay;
  // Petals: memory_cache.bytes_left // (hidden × dtype bytes / kv groups), i.e. K or V of one
  // token in one block; our budget counts K and V of one token in one block.
  info.cache_tokens_left =
      state_ == petals::ServerState::offline ? 0 : 2 * cache_tokens_available();
  return info;
}

std::uint64_t PetalsServer::cache_tokens_available() const {
  // The budget is kept in token × block units (see Impl), the same unit as this value.
  return static_cast<std::uint64_t>(impl_->budget.available());
}

std::size_t PetalsServer::open_sessions() const {
  // Sessions holding a cache; a stream that is only winding down (its cache already returned)
  // does not count.
  std::size_t n = 0;
  for (const auto& [id, s] : impl_->live) n += s->engine ? 1 : 0;
  return n;
}

ServerStats PetalsServer::stats() const {
  std::lock_guard lk(impl_->stats_mu);
  ServerStats s = impl_->stats;
  s.batched_submissions = impl_->worker.batched_submissions();
  return s;
}

asio::awaitable<std::size_t> announce_span(hm::net::DHTNode& dht, const lp::PeerId& self,
                                           const ServerConfig& c, std::uint32_t start,
                                           std::uint32_t end, petals::ServerInfo info) {
  petals::AnnounceParams p;
  p.dht_prefix = c.dht_prefix;
  p.start_block = start;
  p.end_block = end;
  p.peer_id_base58 = self.to_base58();
  p.now = dht.now();
  p.update_period = c.update_period;
  p.expiration = c.expiration;
  p.model = c.model_info;
  auto plan = petals::plan_announce(p, std::move(info));
  if (!plan) {
    spdlog::error("serve: cannot announce: {}", plan.error().message);
    co_return 0;
  }
  std::size_t stored = 0;
  for (const auto& s : *plan) {
    auto subkey = hm::msgpack_encode(hm::Value::str(s.subkey));
    if (!subkey) continue;
    const auto key = hm::DHTID::from_key_str(s.key);
    if (co_await dht.store(key, *subkey, s.value, s.expiration_time)) ++stored;
  }
  co_return stored;
}

namespace {

asio::awaitable<void> announce(PetalsServer& srv, PetalsServer::Impl& im) {
  const auto& c = srv.config();
  if (!c.announce || !im.dht) co_return;
  const auto n = co_await announce_span(*im.dht, im.host->id(), c, srv.schema().start_block,
                                        srv.schema().end_block, srv.server_info());
  spdlog::debug("serve: announced {} ({} records stored)", petals::server_state_name(srv.state()),
                n);
}

}  // namespace

asio::awaitable<void> PetalsServer::start() {
  auto self = shared_from_this();
  Impl& im = *impl_;
  if (im.rpc) co_return;  // already started
  state_ = petals::ServerState::joining;
  spdlog::info("serve: {} blocks [{}, {}): JOINING", config_.dht_prefix, schema_.start_block,
               schema_.end_block);
  co_await announce(*this, im);
  im.rpc = net::RpcServer::create(im.host);
  register_handlers(self, im);
  state_ = petals::ServerState::online;
  spdlog::info("serve: ONLINE as {} ({} cache tokens)", im.host->id().to_base58(),
               cache_tokens_available());
  co_await announce(*this, im);
  // Re-announce every update_period until shutdown cancels the timer.
  im.announcer_running = true;
  im.announcer_done = false;
  asio::co_spawn(
      im.host->executor(),
      [self]() -> asio::awaitable<void> {
        Impl& im = self->impl();
        const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(self->config().update_period));
        while (!im.stopping) {
          co_await sleep_for(im.announce_timer, period);
          if (im.stopping) break;
          co_await announce(*self, im);
        }
        im.announcer_done = true;
      },
      asio::detached);
}

asio::awaitable<void> PetalsServer::shutdown() {
  auto self = shared_from_this();
  Impl& im = *impl_;
  if (im.stopping) co_return;
  im.stopping = true;
  const bool was_started = static_cast<bool>(im.rpc);
  state_ = petals::ServerState::offline;
  spdlog::info("serve: OFFLINE, closing {} open session(s)", im.live.size());
  if (was_started) co_await announce(*this, im);
  // Open sessions finish their current step, then get an error frame saying why.
  for (auto& [id, s] : im.live) {
    s->kill_reason = "server is shutting down";
    s->notify();
  }
  im.announce_timer.cancel();
  asio::steady_timer wait(im.host->executor());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((!im.live.empty() || !im.announcer_done) && std::chrono::steady_clock::now() < deadline) {
    im.announce_timer.cancel();
    co_await sleep_for(wait, std::chrono::milliseconds(5));
  }
  if (im.rpc) im.rpc->remove_all();
  im.worker.stop();
  im.stopped = true;
}

petals::ModelFamily petals_family(const engine::ModelConfig& cfg) {
  if (cfg.is_bloom()) return petals::ModelFamily::bloom;
  if (cfg.is_falcon()) return petals::ModelFamily::falcon;
  if (cfg.experts > 0) return petals::ModelFamily::mixtral;
  return petals::ModelFamily::llama;
}

}  // namespace kwaai::serve
