// `kwaainet serve`: a Petals server for a span of a Llama model. Prints its listen addresses on
// stdout (one /ip4/../tcp/N/p2p/<id> per line, like `dht run`), joins the DHT through
// --initial-peers, announces JOINING, loads its blocks, serves and announces ONLINE; SIGTERM or
// SIGINT announces OFFLINE, fails open sessions with an error frame and exits 0.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calibration/calibrate.hpp"
#include "calibration/profile.hpp"
#include "cli/commands.hpp"
#include "cli/serve/block_selection.hpp"
#include "cli/serve/compute_worker.hpp"
#include "cli/serve/petals_server.hpp"
#include "engine/model/model_source.hpp"
#include "p2p/libp2p/host/node.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::cli {
namespace {

namespace lp = kwaai::p2p::libp2p;
namespace hm = kwaai::p2p::hivemind;
namespace net = kwaai::p2p::hivemind::net;
namespace petals = kwaai::p2p::petals;
namespace asio = boost::asio;

struct ServeOptions {
  std::string model;
  std::string blocks;  // "A:B"
  std::int64_t num_blocks = 0;
  std::vector<std::string> initial_peers;
  std::vector<std::string> host_maddrs{"/ip4/0.0.0.0/tcp/0"};
  std::string identity;
  std::string dht_prefix;
  std::string public_name;
  std::string device;
  std::string quant = "none";
  std::string torch_dtype = "auto";
  std::int64_t max_cache_tokens = 0;  // 0: Petals' attn_cache_tokens default
  double update_period = 120;         // Petals' CLI default
  std::string throughput = "auto";    // auto | eval | dry_run | a number (Petals' --throughput)
  std::int64_t inference_max_length = 0, max_batch_size = 0, max_chunk_size_bytes = 0;
  double max_alloc_timeout = 600;
  double bootstrap_timeout_s = 30;
};

using calibration::model_label;

// --throughput as Petals takes it: a number to announce as is, or "auto" (the calibration
// profile, measured now and saved when there is none), "eval" (measure now even if there is
// one) or "dry_run" (measure, print, exit without serving).
struct ThroughputMode {
  std::optional<double> fixed;
  std::string mode = "auto";
};

ThroughputMode parse_throughput(const std::string& s) {
  if (s == "auto" || s == "eval" || s == "dry_run") return {std::nullopt, s};
  std::size_t used = 0;
  double v = -1;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || !(v >= 0) || !std::isfinite(v))
    throw std::invalid_argument("--throughput " + s +
                                ": expected auto, eval, dry_run or a non-negative number");
  return {v, "fixed"};
}

std::pair<std::uint32_t, std::uint32_t> parse_blocks(const std::string& s, std::int64_t layers) {
  const auto colon = s.find(':');
  std::size_t used_a = 0, used_b = 0;
  long a = -1, b = -1;
  try {
    a = std::stol(s.substr(0, colon), &used_a);
    b = std::stol(s.substr(colon + 1), &used_b);
  } catch (...) {
  }
  if (colon == std::string::npos || used_a != colon || used_b != s.size() - colon - 1 || a < 0 ||
      b <= a || b > layers)
    throw std::invalid_argument("--blocks " + s +
                                ": expected A:B with 0 <= A < B <= " + std::to_string(layers));
  return {static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b)};
}

// Block records for blocks [0, layers) as the DHT has them now (Petals reads with latest=True).
asio::awaitable<std::vector<petals::BlockRecord>> read_records(net::DHTNode& dht,
                                                               const std::string& prefix,
                                                               std::int64_t layers) {
  std::vector<petals::BlockRecord> out;
  for (std::int64_t b = 0; b < layers; ++b) {
    const auto uid = petals::block_uid(prefix, static_cast<std::uint32_t>(b));
    const auto key = hm::DHTID::from_key_str(uid);
    auto v = co_await dht.get(key, /*latest=*/true);
    if (v && v->is_dictionary)
      out.push_back(petals::read_block_record(v->dictionary.to_value(), dht.now()));
    else
      out.emplace_back();
  }
  co_return out;
}

int run_serve(const ServeOptions& o, const GlobalOptions& global) {
  using namespace kwaai::engine;
  if (!o.blocks.empty() && o.num_blocks > 0)
    throw std::invalid_argument("serve: give --blocks or --num-blocks, not both");
  std::vector<lp::Multiaddr> listen, initial;
  for (const auto& s : o.host_maddrs) {
    auto m = lp::Multiaddr::from_string(s);
    if (!m) throw std::invalid_argument("--host-maddr " + s + ": " + m.error().to_string());
    listen.push_back(*m);
  }
  for (const auto& s : o.initial_peers) {
    auto m = lp::Multiaddr::from_string(s);
    if (!m || !m->peer_id())
      throw std::invalid_argument("--initial-peers " + s + ": needs /ip4/../tcp/N/p2p/<id>");
    initial.push_back(*m);
  }
  const std::string device = !o.device.empty()                 ? o.device
                             : !global.device_override.empty() ? global.device_override
                                                               : "auto";
  auto src = std::shared_ptr<ModelSource>(open_model(o.model));
  const ModelConfig cfg = src->config();
  const auto groups =
      static_cast<std::uint32_t>(cfg.heads / std::max<std::int64_t>(1, cfg.kv_heads));
  const Quant quant = quant_from_name(o.quant);
  auto be = std::shared_ptr<Backend>(make_backend(device));

  serve::ServerConfig sc;
  if (!o.dht_prefix.empty()) {
    sc.dht_prefix = o.dht_prefix;
  } else {
    // Petals derives the prefix from the hub repo, by its family's rule (Mixtral: the whole
    // repo id; Falcon: the basename; Llama, and Mistral, which Petals would serve as a Llama: the
    // basename + "-hf"); for a local checkpoint the folder (or file) name stands in for the repo
    // id.
    auto p = petals::derive_dht_prefix(serve::petals_family(cfg), model_label(o.model));
    if (!p)
      throw std::invalid_argument("cannot derive a dht prefix: " + p.error().message +
                                  " (use --dht-prefix)");
    sc.dht_prefix = *p;
  }
  sc.model_info = petals::ModelInfo{static_cast<std::uint64_t>(cfg.layers), std::nullopt};
  if (!o.public_name.empty()) sc.public_name = o.public_name;
  sc.update_period = o.update_period;
  sc.limits = petals::ServerLimits::petals_defaults(groups);
  if (o.inference_max_length > 0) sc.limits.inference_max_length = o.inference_max_length;
  if (o.max_batch_size > 0) sc.limits.max_batch_size = o.max_batch_size;
  if (o.max_chunk_size_bytes > 0) sc.limits.max_chunk_size_bytes = o.max_chunk_size_bytes;
  sc.limits.max_alloc_timeout = o.max_alloc_timeout;
  sc.max_cache_tokens = o.max_cache_tokens > 0 ? o.max_cache_tokens : (groups > 1 ? 16384 : 4096);
  sc.dtype = serve::resolve_server_dtype(cfg.torch_dtype, o.torch_dtype);
  sc.quant_type = o.quant == "none" ? std::string("none") : o.quant;

  // Calibration profile: the default block count and the announced throughput. Like a Petals
  // server, a first start on a new model/device/quant measures it (Petals' step counts) and
  // caches it for the next start.
  const ThroughputMode tm = parse_throughput(o.throughput);
  const auto profile_dir = calibration::default_profile_dir();
  std::optional<calibration::Profile> profile;
  if (profile_dir && tm.mode != "eval" && tm.mode != "dry_run") {
    calibration::Profile key;
    key.model = model_label(o.model);
    key.device_name = be->description();
    key.quant = o.quant;
    profile = calibration::load_profile(*profile_dir, key.key());
  }
  if (!profile && !tm.fixed) {
    spdlog::info(
        "serve: measuring throughput for {} on {} (cached afterwards; --throughput N "
        "skips this)",
        model_label(o.model), be->description());
    calibration::CalibrateOptions co;
    co.model = o.model;
    co.quant = o.quant;
    profile = calibration::calibrate(co, *be, *src);
    if (profile_dir && tm.mode != "dry_run") {
      try {
        const auto path = calibration::save_profile(*profile_dir, *profile);
        spdlog::info("serve: throughput {:.1f} tokens/s saved to {}", profile->throughput,
                     path.string());
      } catch (const std::exception& e) {
        // Only the cache is lost; the measurement still stands for this run.
        spdlog::warn("serve: throughput {:.1f} tokens/s not saved: {}", profile->throughput,
                     e.what());
      }
    }
  }
  if (tm.mode == "dry_run") {
    std::cout << "throughput " << profile->throughput << " tokens/s (forward "
              << profile->forward_rps << ", inference " << profile->inference_rps << ", network "
              << profile->network_rps << " rps), num_blocks " << profile->num_blocks << std::endl;
    return 0;
  }
  if (tm.fixed) {
    sc.throughput = *tm.fixed;
  } else {
    sc.throughput = profile->throughput;
    sc.forward_rps = profile->forward_rps;
    sc.inference_rps = profile->inference_rps;
    sc.network_rps = profile->network_rps;
    sc.using_relay = profile->using_relay;
  }
  std::int64_t want_blocks = o.num_blocks;
  if (o.blocks.empty() && want_blocks <= 0) {
    want_blocks = profile ? std::min(profile->num_blocks, cfg.layers) : cfg.layers;
    if (!profile) spdlog::warn("serve: no calibration profile; serving all {} blocks", cfg.layers);
  }
  if (want_blocks > cfg.layers)
    throw std::invalid_argument("--num-blocks " + std::to_string(want_blocks) + " exceeds the " +
                                std::to_string(cfg.layers) + " blocks of the model");

  auto key = o.identity.empty() ? lp::Result<lp::PrivateKey>(lp::PrivateKey::generate_ed25519())
                                : lp::load_or_create_identity(o.identity);
  if (!key) throw std::runtime_error("identity " + o.identity + ": " + key.error().to_string());
  // The block loader's thread outlives the event loop: a stop signal during a load must not
  // destroy the io_context while the load's completion is still to be posted to it (that raced
  // into heap corruption); it is joined below while ctx still exists.
  serve::ComputeWorker loader(1);
  asio::io_context ctx;
  lp::HostConfig hc;
  hc.agent_version = std::string("kwaainet/") + KWAAI_VERSION;
  auto node = lp::Libp2pNode::create(ctx.get_executor(), std::move(*key), hc);
  net::DHTNodeConfig dc;
  dc.ping_new_connections = true;
  auto dht = net::DHTNode::create(node.host, node.kad, dc);
  std::shared_ptr<llama::SpanExecutor> exec;
  std::shared_ptr<serve::PetalsServer> server;
  bool terminating = false;
  int rc = 0;
  // Installed before the address is printed: whoever reads it may signal at once (asio
  // queues a signal that arrives before run()).
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("serve: signal {}, shutting down", sig);
    terminating = true;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          if (server) co_await server->shutdown();
          co_await node.host->close();
          ctx.stop();
        },
        asio::detached);
  });

  for (const auto& m : listen)
    if (auto st = node.host->listen(m); !st)
      throw std::runtime_error("listen " + m.to_string() + ": " + st.error().to_string());
  for (const auto& a : node.host->announce_addrs())
    std::cout << a.with_peer_id(node.host->id()).to_string() << "\n";
  std::cout.flush();

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        if (!initial.empty()) {
          const auto n = co_await dht->bootstrap(initial);
          spdlog::info("serve: {} of {} initial peers answered", n, initial.size());
        }
        std::uint32_t start = 0, end = 0;
        if (!o.blocks.empty()) {
          std::tie(start, end) = parse_blocks(o.blocks, cfg.layers);
        } else {
          auto records = co_await read_records(*dht, sc.dht_prefix, cfg.layers);
          const auto tp = serve::block_throughputs(records);
          start = serve::choose_best_start(tp, static_cast<std::uint32_t>(want_blocks));
          end = start + static_cast<std::uint32_t>(want_blocks);
          spdlog::info("serve: chose blocks [{}, {}) from the swarm's coverage", start, end);
        }
        if (terminating) co_return;
        petals::ServerInfo joining;
        joining.state = petals::ServerState::joining;
        joining.throughput = sc.throughput;
        joining.public_name = sc.public_name;
        joining.version = petals::RpcInfo{}.version;
        joining.torch_dtype = std::string(hm::dtype_name(sc.dtype));
        spdlog::info("serve: {} blocks [{}, {}) JOINING, loading on {}", sc.dht_prefix, start, end,
                     be->description());
        co_await serve::announce_span(*dht, node.host->id(), sc, start, end, joining);
        // Loading blocks is slow: it runs on a worker thread while the node keeps serving.
        std::string load_error;
        try {
          std::function<std::shared_ptr<llama::SpanExecutor>()> load = [&] {
            return std::make_shared<llama::SpanExecutor>(*be, *src, start, end, quant);
          };
          auto loaded = co_await serve::on_worker<std::shared_ptr<llama::SpanExecutor>>(
              loader, std::move(load), true);
          exec = std::move(loaded);
        } catch (const std::exception& e) {
          load_error = e.what();
        }
        if (!load_error.empty()) {
          spdlog::error("serve: loading blocks failed: {}", load_error);
          petals::ServerInfo off = joining;
          off.state = petals::ServerState::offline;
          co_await serve::announce_span(*dht, node.host->id(), sc, start, end, off);
          rc = 1;
          co_await node.host->close();
          ctx.stop();
          co_return;
        }
        loader.stop();
        if (terminating) co_return;
        server = serve::PetalsServer::create(node.host, dht, *exec, sc);
        co_await server->start();
      },
      [&](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          spdlog::error("serve: {}", x.what());
        }
        rc = 1;
        ctx.stop();
      });
  ctx.run();
  loader.stop();  // a load still running finishes and posts into the stopped (live) ctx
  server.reset();
  exec.reset();
  return rc;
}

}  // namespace

void register_serve(CLI::App& app, GlobalOptions& global) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve a span of Llama blocks to a Petals swarm; prints /ip4/../tcp/N/p2p/<id> lines");
  cmd->add_option("--model", o->model, "HF folder or .gguf file")->required();
  cmd->add_option("--blocks", o->blocks, "Blocks A:B to serve (start inclusive, end exclusive)");
  cmd->add_option("--num-blocks", o->num_blocks,
                  "Serve N blocks where the swarm needs them most (default: calibration)");
  cmd->add_option("--initial-peers", o->initial_peers, "DHT peers /ip4/../tcp/N/p2p/<id>");
  cmd->add_option("--host-maddr", o->host_maddrs, "Listen multiaddr(s)")->capture_default_str();
  cmd->add_option("--identity", o->identity, "PrivateKey protobuf file; created if missing");
  cmd->add_option("--dht-prefix", o->dht_prefix, "Override the model's DHT prefix");
  cmd->add_option("--public-name", o->public_name, "Name shown by the health monitor");
  cmd->add_option("--device", o->device, "cpu | vulkan[:N] | auto (default: KWAAI_DEVICE or auto)");
  add_quant_option(cmd, o->quant, "Block weights");
  cmd->add_option("--torch-dtype", o->torch_dtype,
                  "Wire dtype of outputs: auto | bfloat16 | float16 | float32")
      ->capture_default_str();
  cmd->add_option("--max-cache-tokens", o->max_cache_tokens,
                  "KV cache budget in tokens (Petals' attn_cache_tokens; default 4096, 16384 "
                  "with GQA)");
  cmd->add_option("--update-period", o->update_period, "Seconds between DHT announcements")
      ->capture_default_str();
  cmd->add_option("--throughput", o->throughput,
                  "auto (calibration profile; measured and saved on a first start) | eval "
                  "(measure again) | dry_run (measure, print, exit) | a number to announce")
      ->capture_default_str();
  cmd->add_option("--inference-max-length", o->inference_max_length,
                  "Longest session (default 2048, 8192 with GQA)");
  cmd->add_option("--max-batch-size", o->max_batch_size,
                  "Tokens per task, batch x seq (default 2048, 8192 with GQA)");
  cmd->add_option("--max-chunk-size-bytes", o->max_chunk_size_bytes, "Default 256 MiB");
  cmd->add_option("--max-alloc-timeout", o->max_alloc_timeout, "Cap on clients' alloc_timeout (s)")
      ->capture_default_str();
  cmd->callback([o, &global] {
    if (const int rc = run_serve(*o, global); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace kwaai::cli
