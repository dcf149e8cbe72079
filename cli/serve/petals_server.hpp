// A Petals server for one span of blocks, on an existing libp2p host + hivemind DHT node: the
// TransformerConnectionHandler RPCs (rpc_info, rpc_inference, rpc_forward[_stream], rpc_push,
// rpc_backward[_stream] refused), the DHT announcements (JOINING → ONLINE → OFFLINE, one record
// per block and the _petals.models registry), and a compute worker thread that owns every use of
// the device. `kwaainet serve` is a thin wrapper; tests and benches run servers in-process.
//
// Threading: create/start/shutdown and every accessor run on the host's single-threaded
// executor, except cache_tokens_available() and stats(), which are safe from any thread. Block
// compute, cache allocation and cache release happen on the worker thread only.
#pragma once

#include <utility>  // before asio/awaitable.hpp (Boost 1.74 uses std::exchange unincluded)

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/llama/span_executor.hpp"
#include "p2p/hivemind/net/dht_node.hpp"
#include "p2p/petals/limits.hpp"
#include "p2p/petals/rpc_messages.hpp"
#include "p2p/petals/server_info.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::serve {

namespace asio = boost::asio;
namespace lp = kwaai::p2p::libp2p;
namespace hm = kwaai::p2p::hivemind;
namespace petals = kwaai::p2p::petals;

// The handler names Petals registers (hivemind: "<class name>.<method>").
inline constexpr const char* kHandlerPrefix = "TransformerConnectionHandler.";

struct ServerConfig {
  std::string dht_prefix;  // validated (no "." or " ")
  // Announce the _petals.models record (skipped anyway for prefixes starting with "_").
  std::optional<petals::ModelInfo> model_info;
  std::optional<std::string> public_name;
  double update_period = 60;         // seconds between announcements (Petals' CLI: 120)
  std::optional<double> expiration;  // record lifetime; default max(2 × update_period, 3 s)
  bool announce = true;              // false: no DHT stores at all (tests of the RPCs only)
  petals::ServerLimits limits = petals::ServerLimits::petals_defaults();
  // KV cache budget per block of the span, in tokens of batch × max_length — Petals'
  // attn_cache_tokens (4096, or 16384 with grouped-query attention).
  std::int64_t max_cache_tokens = 4096;
  // The dtype outputs travel in (Petals: the checkpoint's torch_dtype, bfloat16 for float32).
  hm::DType dtype = hm::DType::bfloat16;
  hm::CompressionType compression = hm::pb::NONE;
  // Throughput numbers to announce (calibration profile); all RPS, >= 0.
  double throughput = 0;
  std::optional<double> forward_rps, inference_rps, network_rps;
  std::optional<std::string> quant_type;  // "none", "int8", ... as Petals names them
  bool using_relay = false;
  // Compute queue: steps and forwards waiting for the device beyond this are refused with
  // "server busy" rather than queued without bound.
  std::size_t max_queued_tasks = 64;
  // Inference sessions one peer may hold at once (every session pins cache).
  std::size_t max_sessions_per_peer = 64;
};

// Counters for the server-overhead bench. Times are sums over every finished inference step:
// `handler` from the decoded request to the response written (deserialize, schedule, compute,
// serialize, send); `compute` the worker's time inside the engine for those steps.
struct ServerStats {
  std::uint64_t inference_steps = 0;
  std::uint64_t inference_chunks = 0;  // engine passes of those steps (max_chunk_size_bytes)
  std::uint64_t forward_calls = 0;
  std::uint64_t batched_submissions = 0;  // worker submissions that carried > 1 inference step
  std::uint64_t rejected_busy = 0;
  double handler_seconds = 0;
  double compute_seconds = 0;
  std::uint64_t sessions_opened = 0;
  std::uint64_t sessions_closed = 0;
};

class PetalsServer : public std::enable_shared_from_this<PetalsServer> {
 public:
  // `exec` (and its backend) must outlive the server. `dht` may be null when !config.announce.
  // Throws std::invalid_argument for an invalid config (prefix, limits, empty span).
  static std::shared_ptr<PetalsServer> create(std::shared_ptr<lp::Host> host,
                                              std::shared_ptr<hm::net::DHTNode> dht,
                                              engine::llama::SpanExecutor& exec,
                                              ServerConfig config);
  ~PetalsServer();
  PetalsServer(const PetalsServer&) = delete;
  PetalsServer& operator=(const PetalsServer&) = delete;

  // Announces JOINING, registers the handlers, announces ONLINE and keeps re-announcing every
  // update_period until shutdown. Returns once ONLINE has been announced.
  asio::awaitable<void> start();
  // Announces OFFLINE (once), fails every open session with an error frame, refuses new calls,
  // stops the announcer and the worker. Idempotent.
  asio::awaitable<void> shutdown();

  petals::ServerState state() const { return state_; }
  const ServerConfig& config() const { return config_; }
  const petals::SpanSchema& schema() const { return schema_; }
  // The ServerInfo the next announcement stores (state, span, cache_tokens_left ...).
  petals::ServerInfo server_info() const;
  // Petals' rpc_info value: free cache bytes // (K+V bytes of one token in one block).
  std::uint64_t cache_tokens_available() const;
  std::size_t open_sessions() const;  // inference sessions holding a cache now
  ServerStats stats() const;

  struct Impl;                     // defined in cli/serve/server_impl.hpp
  Impl& impl() { return *impl_; }  // internal: the RPC handlers (handlers.cpp)

 private:
  PetalsServer(std::shared_ptr<lp::Host> host, std::shared_ptr<hm::net::DHTNode> dht,
               engine::llama::SpanExecutor& exec, ServerConfig config);

  ServerConfig config_;
  petals::SpanSchema schema_;
  petals::ServerState state_ = petals::ServerState::offline;
  std::unique_ptr<Impl> impl_;
};

// One announcer cycle for span [start, end) in `state`, as PetalsServer does it (used by
// `kwaainet serve` to announce JOINING before the weights are loaded). Returns the number of
// records that reached at least one DHT replica.
asio::awaitable<std::size_t> announce_span(hm::net::DHTNode& dht, const lp::PeerId& self,
                                           const ServerConfig& config, std::uint32_t start,
                                           std::uint32_t end, petals::ServerInfo info);

// Petals' server dtype for a checkpoint: its torch_dtype unless that is float32/absent/"auto",
// then bfloat16 (block_utils.resolve_block_dtype). `requested` ("auto", "float32", "bfloat16",
// "float16") overrides. Throws std::invalid_argument for other names.
hm::DType resolve_server_dtype(const std::string& checkpoint_torch_dtype,
                               const std::string& requested = "auto");

// The Petals family whose DHT-prefix rule a checkpoint announces under: Bloom, Falcon, Mixtral
// (a MoE config), else Llama (Llama, and Mistral, which Petals would serve as a Llama).
petals::ModelFamily petals_family(const engine::ModelConfig& cfg);

}  // namespace kwaai::serve
