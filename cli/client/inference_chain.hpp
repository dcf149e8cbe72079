// A chain of ServerSessions covering blocks [0, n_blocks) for one generation, with Petals'
// failure handling: a failed server is banned (15 s × 2^k in Petals; here for the rest of the
// generation, which is shorter than any ban), the failed span's blocks are re-routed from a
// fresh read of the DHT, and each replacement session's first step replays the inputs the
// failed one had received, so the remote KV caches end up identical.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/client/client.hpp"
#include "cli/client/route.hpp"
#include "cli/client/server_session.hpp"

namespace kwaai::client {

// Reads the current spans of every block from the DHT (ONLINE servers only).
using SpanSource = std::function<asio::awaitable<std::vector<RemoteSpan>>()>;

class InferenceChain {
 public:
  InferenceChain(lp::Host& host, SpanSource spans, const ClientConfig& cfg, std::uint32_t n_blocks,
                 std::int64_t max_length, std::int64_t hidden);
  // Routes and opens every session, then reads the hidden_states format from rpc_info of the
  // server holding block 0 (as RemoteSequenceManager.rpc_info). Throws ClientError when no
  // chain exists.
  asio::awaitable<void> open();
  // x f32[tokens, hidden] for the next positions (batch 1) → the last block's output for
  // those positions. Throws ClientError when retries are exhausted.
  asio::awaitable<std::vector<float>> step(std::vector<float> x, std::int64_t tokens);
  asio::awaitable<void> close();

  std::vector<RouteHop> route() const;
  const std::vector<std::string>& failures() const { return failures_; }
  const WireFormat& wire_format() const { return wire_; }
  std::int64_t position() const { return position_; }

 private:
  struct Hop {
    std::unique_ptr<ServerSession> session;
    std::vector<float> history;  // inputs sent so far: positions [0, session->position())
    std::vector<float> replay;   // a fresh replacement's first inputs: positions [0, rows)
  };
  // Opens sessions for a route of [start, end), the first one inheriting `replay`.
  asio::awaitable<std::vector<Hop>> open_range(std::uint32_t start, std::uint32_t end,
                                               std::vector<float> replay);
  void note_failure(const std::string& peer, const std::string& what);
  asio::awaitable<void> backoff();

  lp::Host& host_;
  SpanSource spans_;
  const ClientConfig& cfg_;
  std::uint32_t n_blocks_;
  std::int64_t max_length_, hidden_;
  std::int64_t position_ = 0;
  std::vector<Hop> hops_;
  WireFormat wire_;
  std::set<std::string> banned_;
  std::vector<std::string> failures_;
  int attempts_ = 0;
};

}  // namespace kwaai::client
