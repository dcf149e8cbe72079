// The Petals client (RemoteSequenceManager + InferenceSession in one): it joins the swarm as a
// client-mode hivemind DHT node, reads the block records of a model, routes a chain of servers
// over all blocks, and generates tokens — embeddings, final norm, LM head and sampling run
// locally on ModelEnds, every block runs remotely through rpc_inference.
//
// A server that fails mid-session is banned for a while, the failed span is re-routed from a
// fresh DHT read, and the replacement servers get the span's whole input history as their first
// step (Petals' _update_sequence + history replay), so generation continues exactly.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/client/server_session.hpp"
#include "engine/llama/model_ends.hpp"
#include "engine/llama/sampling.hpp"

namespace kwaai::client {

struct ClientConfig {
  std::vector<std::string> initial_peers;  // /ip4/../tcp/N/p2p/<id>
  std::string dht_prefix;
  std::optional<std::string> active_adapter;
  SessionTimeouts timeouts;
  // Failed attempts tolerated per generation before giving up (Petals: unlimited by default;
  // a CLI wants an answer).
  int max_retries = 4;
  // Backoff before retry n >= 2: min(min_backoff * 2^(n-2), max_backoff); the first is immediate.
  std::chrono::milliseconds min_backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  std::chrono::milliseconds bootstrap_timeout{10000};
};

struct RouteHop {
  std::string peer;
  std::uint32_t start = 0, end = 0;
  bool operator==(const RouteHop&) const = default;
};

struct GenerateOptions {
  std::vector<std::int32_t> prompt;  // at least one id (e.g. BOS)
  std::int64_t max_new_tokens = 32;
  engine::llama::SamplingOptions sampling;
  std::vector<std::int32_t> stop_tokens;       // generation ends after emitting one
  std::function<void(std::int32_t)> on_token;  // each new id as soon as it is sampled
  // Every route in use: once at the start, again after each failover.
  std::function<void(const std::vector<RouteHop>&)> on_route;
};

struct GenerateResult {
  std::vector<std::int32_t> ids;      // the new tokens only
  std::vector<RouteHop> route;        // the route at the end
  std::vector<std::string> failures;  // one line per failed server attempt
  std::string wire_dtype;             // hidden states' dtype on the wire (from rpc_info)
  double setup_s = 0;                 // bootstrap, DHT read, opening the sessions
  double prefill_s = 0;               // the prompt step (embed, chain, head, sample)
  double decode_s = 0;                // every later step
  double tokens_per_s = 0;            // new tokens / (prefill_s + decode_s)
};

// The error generation ends with: no chain, all retries spent, a bad request.
class ClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PetalsClient {
 public:
  // `ends` must outlive the client; it decides hidden size, vocabulary and block count.
  PetalsClient(engine::llama::ModelEnds& ends, ClientConfig cfg);
  // Runs one generation on a fresh client node (its own io_context on this thread).
  GenerateResult generate(const GenerateOptions& opt);

 private:
  engine::llama::ModelEnds& ends_;
  ClientConfig cfg_;
};

}  // namespace kwaai::client
