#include "cli/client/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>

#include "cli/client/inference_chain.hpp"
#include "p2p/hivemind/net/dht_node.hpp"
#include "p2p/libp2p/host/node.hpp"
#include "p2p/petals/dht_records.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::client {

namespace hm = kwaai::p2p::hivemind;

PetalsClient::PetalsClient(engine::llama::ModelEnds& ends, ClientConfig cfg)
    : ends_(ends), cfg_(std::move(cfg)) {}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// get_remote_module_infos + compute_spans(min_state=ONLINE) over blocks [0, n), then makes sure
// the host can dial every server it found (addresses from the peer store, else a kad lookup).
asio::awaitable<std::vector<RemoteSpan>> read_spans(hm::net::DHTNode& dht, lp::KadService* kad,
                                                    const ClientConfig& cfg, std::uint32_t n) {
  std::vector<p2p::petals::BlockRecord> records;
  records.reserve(n);
  for (std::uint32_t b = 0; b < n; ++b) {
    const std::string uid = p2p::petals::block_uid(cfg.dht_prefix, b);
    // Named: no temporaries bound to references across co_await (GCC 12 frees them early).
    const hm::DHTID key = hm::DHTID::from_key_str(uid);
    auto v = co_await dht.get(key, /*latest=*/true);
    if (!v || !v->is_dictionary) {
      records.emplace_back();
      continue;
    }
    auto rec =
        p2p::petals::read_block_record(v->dictionary.to_value(), dht.now(), cfg.active_adapter);
    for (const auto& why : rec.skipped) spdlog::warn("client: {}: skipped record: {}", uid, why);
    records.push_back(std::move(rec));
  }
  auto spans = compute_spans(records, 0, p2p::petals::ServerState::online);
  lp::Host& host = dht.host();
  for (const auto& s : spans) {
    auto pid = lp::PeerId::from_string(s.peer);
    if (!pid || !host.connections_to(*pid).empty() || !host.peer_store().addrs(*pid).empty())
      continue;
    if (kad) {
      auto found = co_await kad->find_peer(*pid);
      if (found) host.peer_store().add_addrs(*pid, found->addrs);
    }
  }
  co_return spans;
}

}  // namespace

GenerateResult PetalsClient::generate(const GenerateOptions& opt) {
  const auto& mc = ends_.config();
  if (opt.prompt.empty()) throw ClientError("generate: the prompt needs at least one id");
  if (opt.max_new_tokens <= 0) throw ClientError("generate: max_new_tokens must be positive");
  if (cfg_.dht_prefix.empty()) throw ClientError("generate: --dht-prefix is required");
  if (auto s = p2p::petals::validate_dht_prefix(cfg_.dht_prefix); !s)
    throw ClientError("generate: dht prefix: " + s.error().what());
  std::vector<lp::Multiaddr> initial;
  for (const auto& text : cfg_.initial_peers) {
    auto m = lp::Multiaddr::from_string(text);
    if (!m || !m->peer_id())
      throw ClientError("initial peer " + text + ": " +
                        (m ? std::string("needs a /p2p/<peer id> suffix") : m.error().to_string()));
    initial.push_back(*m);
  }
  if (initial.empty()) throw ClientError("generate: at least one initial peer is required");
  engine::llama::Sampler sampler(opt.sampling);  // validates the sampling options up front

  asio::io_context ctx;
  auto node = lp::Libp2pNode::create(ctx.get_executor(), lp::PrivateKey::generate_ed25519(), {},
                                     lp::KadService::Options{.server_mode = false});
  hm::net::DHTNodeConfig dcfg;
  dcfg.client_mode = true;
  auto dht = hm::net::DHTNode::create(node.host, node.kad, dcfg);

  GenerateResult res;
  std::exception_ptr error;
  const auto n_blocks = static_cast<std::uint32_t>(mc.layers);
  const std::int64_t max_length = static_cast<std::int64_t>(opt.prompt.size()) + opt.max_new_tokens;
  const std::int64_t hidden = mc.hidden;

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        const auto t0 = Clock::now();
        try {
          if (co_await dht->bootstrap(initial) == 0)
            throw ClientError("none of the initial peers answered a DHT ping");
          (void)co_await node.kad->bootstrap(initial);
          SpanSource source = [&]() { return read_spans(*dht, node.kad.get(), cfg_, n_blocks); };
          InferenceChain chain(*node.host, source, cfg_, n_blocks, max_length, hidden);
          std::exception_ptr inner;
          try {
            co_await chain.open();
            std::vector<RouteHop> shown = chain.route();
            if (opt.on_route) opt.on_route(shown);
            res.setup_s = seconds_since(t0);
            std::vector<std::int32_t> history = opt.prompt;
            std::vector<std::int32_t> feed = opt.prompt;
            const auto t_gen = Clock::now();
            for (std::int64_t i = 0; i < opt.max_new_tokens; ++i) {
              const auto t_step = Clock::now();
              auto x = ends_.embed(feed);
              auto y = co_await chain.step(std::move(x), static_cast<std::int64_t>(feed.size()));
              const std::vector<float> last(y.end() - hidden, y.end());
              const auto logits = ends_.logits(last, 1);
              const std::int32_t tok = sampler.sample(logits, history);
              if (i == 0) res.prefill_s = seconds_since(t_step);
              if (auto r = chain.route(); r != shown) {
                shown = r;
                if (opt.on_route) opt.on_route(shown);
              }
              res.ids.push_back(tok);
              history.push_back(tok);
              if (opt.on_token) opt.on_token(tok);
              if (std::find(opt.stop_tokens.begin(), opt.stop_tokens.end(), tok) !=
                  opt.stop_tokens.end())
                break;
              feed.assign(1, tok);
            }
            const double total = seconds_since(t_gen);
            res.decode_s = total - res.prefill_s;
            res.tokens_per_s = total > 0 ? static_cast<double>(res.ids.size()) / total : 0;
            res.route = chain.route();
            res.wire_dtype = std::string(hm::dtype_name(chain.wire_format().dtype));
          } catch (...) {
            inner = std::current_exception();
          }
          res.failures = chain.failures();
          co_await chain.close();
          if (inner) std::rethrow_exception(inner);
        } catch (...) {
          error = std::current_exception();
        }
        co_await node.host->close();
        ctx.stop();
      },
      asio::detached);
  ctx.run();
  if (error) std::rethrow_exception(error);
  return res;
}

}  // namespace kwaai::client
