// rpc_inference: one stream is one session. A reader coroutine moves the client's requests into
// the session's inbox (rpc_push adds to the same inbox); the session loop feeds each request to
// p2p/petals' InferenceProtocol and executes its actions: allocate the cache (first come, first
// served, within alloc_timeout), run each step on the compute worker, answer with exactly one
// response per step, forward the output to next_servers. Whatever ends the stream — the client's
// close, a vanished client, an error, a timeout, shutdown — releases the cache at once.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>

#include <chrono>
#include <cstring>

#include "cli/serve/chunking.hpp"
#include "cli/serve/handlers.hpp"
#include "p2p/hivemind/framing.hpp"

namespace kwaai::serve {

namespace {

using Clock = std::chrono::steady_clock;
using engine::llama::CacheAllocationFailed;
using engine::llama::CacheLease;
using engine::llama::InferenceSession;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

hm::Bytes to_bytes(const google::protobuf::MessageLite& m) {
  hm::Bytes out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

asio::awaitable<void> wait_on(asio::steady_timer& t, Clock::time_point until) {
  boost::system::error_code ec;
  t.expires_at(until);
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Takes `tokens` from the budget when this request is the oldest waiter and they are free;
// polls (the budget is shared with the worker thread, which frees caches) until the deadline.
asio::awaitable<CacheLease> allocate(PetalsServer::Impl& im, std::int64_t tokens,
                                     double timeout_s) {
  if (tokens > im.budget.capacity())
    throw CacheAllocationFailed("AllocationFailed: requested " + std::to_string(tokens) +
                                " cache tokens, more than this server's whole cache (" +
                                std::to_string(im.budget.capacity()) + ")");
  const std::uint64_t ticket = im.next_ticket++;
  im.alloc_queue.push_back(ticket);
  const auto deadline = Clock::now() + seconds(timeout_s);
  asio::steady_timer poll(im.host->executor());
  for (;;) {
    if (im.alloc_queue.front() == ticket && !im.stopping) {
      try {
        CacheLease lease = im.budget.acquire(tokens, std::chrono::milliseconds(0));
        im.alloc_queue.pop_front();
        co_return lease;
      } catch (const CacheAllocationFailed&) {
      }
    }
    if (Clock::now() >= deadline || im.stopping) {
      std::erase(im.alloc_queue, ticket);
      throw CacheAllocationFailed("AllocationFailed: could not allocate " + std::to_string(tokens) +
                                  " cache tokens (available " +
                                  std::to_string(im.budget.available()) + " of " +
                                  std::to_string(im.budget.capacity()) + ") within alloc_timeout " +
                                  std::to_string(timeout_s) + " s: out of memory");
    }
    co_await wait_on(poll, std::min(deadline, Clock::now() + std::chrono::milliseconds(10)));
  }
}

asio::awaitable<void> read_client(std::shared_ptr<LiveSession> live, net::FramedStream& stream) {
  for (;;) {
    auto f = co_await stream.read();
    if (!f || !*f || (*f)->marker == hm::FrameMarker::error) {
      live->client_done = true;  // broken, EOF, or END_OF_STREAM
      if (!f) live->reader_error = "stream broken: " + f.error().to_string();
      break;
    }
    hm::pb::ExpertRequest req;
    if (!req.ParseFromArray((*f)->payload.data(), static_cast<int>((*f)->payload.size()))) {
      live->reader_error = "malformed ExpertRequest";
      break;
    }
    if (live->inbox.size() >= LiveSession::kMaxInbox) {
      live->reader_error = "too many requests sent ahead of their responses";
      break;
    }
    live->inbox.push_back(std::move(req));
    live->notify();
  }
  live->reader_finished = true;
  live->notify();
}

std::vector<std::int64_t> int64s(const hm::HostTensor& t) {
  std::vector<std::int64_t> v(t.numel());
  if (!v.empty()) std::memcpy(v.data(), t.data.data(), v.size() * sizeof(std::int64_t));
  return v;
}

void push_to_next(PetalsServer& srv, const hm::pb::ExpertRequest& step,
                  const petals::RequestMetadata& meta, const hm::pb::Tensor& output) {
  auto push = petals::build_push_request(step, meta, output, srv.schema().dht_prefix);
  if (!push) {
    spdlog::warn("serve: push not sent: {}", push.error().message);
    return;
  }
  auto peer = lp::PeerId::from_string(meta.next_servers->front().peer_id);
  if (!peer) {
    spdlog::warn("serve: push not sent: bad peer id {}", meta.next_servers->front().peer_id);
    return;
  }
  net::CallOptions opt;
  opt.timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(srv.config().limits.request_timeout * 1000));
  auto host = srv.impl().host;
  asio::co_spawn(
      host->executor(),
      [host, peer = *peer, bytes = to_bytes(*push), opt]() -> asio::awaitable<void> {
        const std::string name = std::string(kHandlerPrefix) + "rpc_push";
        auto r = co_await net::call_unary(*host, peer, name, bytes, opt);
        if (!r)
          spdlog::warn("serve: rpc_push to {} failed: {}", peer.to_base58(), r.error().to_string());
        else if (r->is_error)
          spdlog::warn("serve: rpc_push to {} refused: {}", peer.to_base58(), r->error);
      },
      asio::detached);
}

// One request through the protocol. Returns an error text to send (empty: fine), and sets
// `closed` when the session ends normally.
asio::awaitable<std::string> handle_request(PetalsServer& srv, PetalsServer::Impl& im,
                                            const std::shared_ptr<LiveSession>& live,
                                            net::FramedStream& stream,
                                            const hm::pb::ExpertRequest& req, bool& closed) {
  auto actions = live->protocol.on_request(req);
  if (!actions) co_return actions.error().message;
  for (auto& action : *actions) {
    if (std::holds_alternative<petals::CloseSession>(action)) {
      closed = true;
      co_return std::string();
    }
    if (std::holds_alternative<petals::SkipDuplicate>(action)) continue;
    if (auto* a = std::get_if<petals::AllocateCache>(&action)) {
      const auto peer = live->peer.to_base58();
      if (im.sessions_per_peer[peer] >= srv.config().max_sessions_per_peer)
        co_return "too many open sessions from this peer (limit " +
            std::to_string(srv.config().max_sessions_per_peer) + ")";
      const auto& sid = live->protocol.session_id();
      if (sid && im.by_session_id.count(*sid))
        co_return "session_id " + *sid + " is already in use";
      const std::int64_t batch = static_cast<std::int64_t>(a->batch);
      const std::int64_t length =
          std::max<std::int64_t>(1, static_cast<std::int64_t>(a->max_length));
      // Petals allocates batch × max_length for each requested block, so a sub-span session
      // charges only its own blocks.
      const std::int64_t n_req = static_cast<std::int64_t>(a->end_block - a->start_block);
      try {
        // (Named values only across co_await: GCC 12 mis-handles temporaries there.)
        CacheLease taken = co_await allocate(im, batch * length * n_req, a->alloc_timeout);
        auto lease = std::make_shared<CacheLease>(std::move(taken));
        engine::llama::SessionOptions opt;
        opt.batch = batch;
        opt.max_length = length;
        opt.block_begin = a->start_block;
        opt.block_end = a->end_block;
        std::function<std::shared_ptr<InferenceSession>()> make = [&exec = im.exec, opt, lease] {
          return std::make_shared<InferenceSession>(exec, opt, std::move(*lease));
        };
        auto created =
            co_await on_worker<std::shared_ptr<InferenceSession>>(im.worker, std::move(make), true);
        live->engine = std::move(created);
      } catch (...) {
        co_return describe(std::current_exception());
      }
      ++im.sessions_per_peer[peer];
      if (sid) {
        im.by_session_id[*sid] = live;
        live->registered_id = sid;
      }
      im.add_stats([](ServerStats& s) { ++s.sessions_opened; });
      spdlog::info(
          "serve: session {} from {} opened (batch {}, max_length {}, {} cache tokens left)",
          sid.value_or("-"), peer, batch, length, srv.cache_tokens_available());
      continue;
    }
    auto& step = std::get<petals::RunStep>(action);
    const auto t0 = Clock::now();
    if (step.prompts) co_return "deep prompts are not supported by this server yet";
    const auto& shape = step.hidden_states.shape;
    if (shape.size() != 3 || shape[0] != live->engine->batch() ||
        shape[2] != static_cast<std::int64_t>(srv.schema().hidden_size))
      co_return "hidden_states must be [" + std::to_string(live->engine->batch()) + ", tokens, " +
          std::to_string(srv.schema().hidden_size) + "]";
    // max_chunk_size_bytes: the new tokens run as consecutive chunks (Petals'
    // inference_step); hypo_ids apply once, before the first chunk, and each later chunk
    // continues where the previous one ended, so the output equals one pass.
    const std::int64_t b = shape[0], t = shape[1], h = shape[2];
    const auto prefix = static_cast<std::int64_t>(step.start_from_position);
    const std::int64_t chunk =
        t == 0 ? 1
               : max_chunk_length(srv.config().limits.max_chunk_size_bytes, im.exec.config().heads,
                                  b, static_cast<std::int64_t>(hm::dtype_size(srv.config().dtype)),
                                  prefix, t);
    std::vector<float> hidden = step.hidden_states.to_floats();
    StepOutcome out;
    if (chunk < t) out.output.resize(hidden.size());
    std::int64_t at = 0, n_chunks = 0;
    do {  // at least once: a zero-token step still applies hypo_ids and the rollback
      const std::int64_t until = std::min(t, at + chunk);
      StepTask task;
      task.session = live->engine;
      // One pass (the usual case): the input moves in, no copy.
      task.hidden = chunk < t ? slice_tokens(hidden, b, t, h, at, until) : std::move(hidden);
      task.tokens = until - at;
      if (step.hypo_ids && at == 0) task.hypo_ids = int64s(*step.hypo_ids);
      task.start_from_position = prefix + at;
      StepOutcome part;
      try {
        part = co_await step_on_worker(im.worker, std::move(task));
      } catch (const ServerBusy& e) {
        im.add_stats([](ServerStats& s) { ++s.rejected_busy; });
        co_return e.what();
      } catch (...) {
        co_return describe(std::current_exception());
      }
      out.compute_seconds += part.compute_seconds;
      ++n_chunks;
      if (chunk < t)
        place_tokens(part.output, out.output, b, t, h, at, until);
      else
        out.output = std::move(part.output);
      at = until;
    } while (at < t);
    auto tensor = hm::HostTensor::from_floats({shape[0], shape[1], shape[2]}, out.output);
    auto resp = petals::build_step_response(tensor, srv.schema());
    if (!resp) co_return resp.error().message;
    const hm::Bytes bytes = to_bytes(*resp);
    if (!co_await stream.write_message(bytes)) {
      live->client_done = true;
      co_return std::string();
    }
    // Petals pushes the output on to the next server of a chain when the client asked for it.
    auto meta = petals::parse_request_metadata(hm::ByteView(
        reinterpret_cast<const std::uint8_t*>(req.metadata().data()), req.metadata().size()));
    if (meta && meta->next_servers && !meta->next_servers->empty() && !step.pushed &&
        resp->tensors_size() > 0)
      push_to_next(srv, req, *meta, resp->tensors(0));
    const double handler_s = std::chrono::duration<double>(Clock::now() - t0).count();
    im.add_stats([&](ServerStats& s) {
      ++s.inference_steps;
      s.inference_chunks += static_cast<std::uint64_t>(n_chunks);
      s.handler_seconds += handler_s;
      s.compute_seconds += out.compute_seconds;
    });
  }
  co_return std::string();
}

}  // namespace

asio::awaitable<void> serve_inference(std::shared_ptr<PetalsServer> srv, const lp::PeerId& caller,
                                      net::FramedStream& stream) {
  auto& im = srv->impl();
  const auto& lim = srv->config().limits;
  auto live = std::make_shared<LiveSession>(im.host->executor(), caller,
                                            petals::InferenceProtocol(srv->schema(), lim));
  const std::uint64_t live_id = im.next_live++;
  im.live.emplace(live_id, live);
  asio::co_spawn(im.host->executor(), read_client(live, stream), asio::detached);

  const auto session_deadline = Clock::now() + seconds(lim.session_timeout);
  std::string error;
  for (;;) {
    const auto step_deadline = std::min(session_deadline, Clock::now() + seconds(lim.step_timeout));
    while (live->inbox.empty() && !live->client_done && !live->reader_finished &&
           !live->kill_reason && Clock::now() < step_deadline)
      co_await wait_on(live->wake, step_deadline);
    if (live->kill_reason) {
      error = *live->kill_reason;
      break;
    }
    if (live->inbox.empty()) {
      // The client left (or broke its stream), sent garbage, or went silent past step_timeout.
      if (live->reader_error && !live->client_done) error = *live->reader_error;
      break;
    }
    auto req = std::move(live->inbox.front());
    live->inbox.pop_front();
    bool closed = false;
    error = co_await handle_request(*srv, im, live, stream, req, closed);
    if (!error.empty() || closed || (live->client_done && live->reader_error)) break;
  }

  // Tear down: the cache goes back to the budget now (on the worker, which owns the device).
  if (live->registered_id) im.by_session_id.erase(*live->registered_id);
  if (live->engine) {
    const auto peer = caller.to_base58();
    if (auto it = im.sessions_per_peer.find(peer); it != im.sessions_per_peer.end())
      if (--it->second == 0) im.sessions_per_peer.erase(it);
    auto engine = std::move(live->engine);
    if (!im.worker.submit([engine]() mutable { engine.reset(); }, true)) engine.reset();
    im.add_stats([](ServerStats& s) { ++s.sessions_closed; });
    spdlog::info("serve: session {} from {} closed{}{}", live->protocol.session_id().value_or("-"),
                 peer, error.empty() ? "" : ": ", error);
  } else if (!error.empty()) {
    spdlog::info("serve: inference request from {} refused: {}", caller.to_base58(), error);
  }
  if (!error.empty()) co_await stream.write_error(error);
  if (!live->reader_finished) {
    // Give the client a moment to read our answer and close; then cut the stream so the
    // reader (which borrows `stream`) returns before we do.
    (void)stream.close_write();
    const auto grace = Clock::now() + std::chrono::seconds(2);
    while (!live->reader_finished && Clock::now() < grace) co_await wait_on(live->wake, grace);
    if (!live->reader_finished) stream.reset();
    while (!live->reader_finished)
      co_await wait_on(live->wake, Clock::now() + std::chrono::seconds(1));
  }
  im.live.erase(live_id);
}

}  // namespace kwaai::serve
