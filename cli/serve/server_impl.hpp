// Internal state of PetalsServer shared by its lifecycle code (petals_server.cpp) and its RPC
// handlers (handlers.cpp). Everything here lives on the io executor except `worker` (its own
// thread), `budget` (thread-safe) and `stats` (guarded by stats_mu).
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "cli/serve/compute_worker.hpp"
#include "cli/serve/petals_server.hpp"
#include "engine/llama/kv_cache.hpp"
#include "engine/llama/session.hpp"
#include "p2p/hivemind/net/rpc.hpp"
#include "p2p/petals/inference_protocol.hpp"

namespace kwaai::serve {

namespace net = kwaai::p2p::hivemind::net;

// One rpc_inference stream: its protocol state, its engine session (after allocation) and the
// requests waiting for it, from the client stream or from rpc_push.
struct LiveSession {
  LiveSession(asio::any_io_executor ex, lp::PeerId p, petals::InferenceProtocol proto)
      : peer(std::move(p)), protocol(std::move(proto)), wake(ex) {}
  lp::PeerId peer;
  petals::InferenceProtocol protocol;
  std::shared_ptr<engine::llama::InferenceSession> engine;
  std::deque<hm::pb::ExpertRequest> inbox;  // bounded by kMaxInbox
  bool client_done = false;                 // EOF / END_OF_STREAM / broken stream
  bool reader_finished = false;
  std::optional<std::string> reader_error;  // a malformed frame or message from the client
  std::optional<std::string> kill_reason;   // server shutdown
  std::optional<std::string> registered_id;
  asio::steady_timer wake;  // cancelled to wake the session loop
  void notify() { wake.cancel(); }
  static constexpr std::size_t kMaxInbox = 32;
};

struct PetalsServer::Impl {
  Impl(std::shared_ptr<lp::Host> h, std::shared_ptr<hm::net::DHTNode> d,
       engine::llama::SpanExecutor& e, const ServerConfig& c)
      : host(std::move(h)),
        dht(std::move(d)),
        exec(e),
        // Counted in Petals' unit, one token of one block: a session charges batch ×
        // max_length × its requested blocks, so max_cache_tokens per block of the span.
        budget(c.max_cache_tokens * e.n_blocks()),
        worker(c.max_queued_tasks),
        announce_timer(host->executor()),
        alloc_timer(host->executor()) {}

  std::shared_ptr<lp::Host> host;
  std::shared_ptr<hm::net::DHTNode> dht;
  engine::llama::SpanExecutor& exec;
  engine::llama::CacheBudget budget;
  ComputeWorker worker;
  std::shared_ptr<net::RpcServer> rpc;

  std::map<std::uint64_t, std::shared_ptr<LiveSession>> live;  // every open stream
  std::uint64_t next_live = 0;
  std::unordered_map<std::string, std::weak_ptr<LiveSession>> by_session_id;  // rpc_push routing
  std::unordered_map<std::string, std::size_t> sessions_per_peer;

  // Cache allocation is first come, first served: only the oldest waiter may take tokens, so a
  // stream of small requests cannot starve a large one.
  std::deque<std::uint64_t> alloc_queue;
  std::uint64_t next_ticket = 0;
  asio::steady_timer announce_timer;
  asio::steady_timer alloc_timer;
  bool announcer_running = false;
  bool announcer_done = true;
  bool stopping = false;
  bool stopped = false;

  mutable std::mutex stats_mu;
  ServerStats stats;

  void add_stats(const std::function<void(ServerStats&)>& f) {
    std::lock_guard lk(stats_mu);
    f(stats);
  }
};

}  // namespace kwaai::serve
