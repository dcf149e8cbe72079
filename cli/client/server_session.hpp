// One rpc_inference stream to one server for one span of blocks (Petals'
// _ServerInferenceSession): the stream opens when the session is created, every step sends an
// ExpertRequest {uid = the span's chain uid, tensors = [hidden_states, prompts dummy, hypo_ids
// dummy], metadata = client_inference_metadata} and reads exactly one ExpertResponse, and close
// sends the empty request plus END_OF_STREAM and waits for the server's EOF.
//
// Threading: coroutines on the host's single-threaded executor. Failures are values: a server
// that vanishes, times out or answers an error frame is normal in a swarm.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/client/route.hpp"
#include "p2p/hivemind/net/rpc.hpp"
#include "p2p/hivemind/tensor.hpp"

namespace kwaai::client {

namespace lp = kwaai::p2p::libp2p;
namespace net = kwaai::p2p::hivemind::net;
namespace asio = boost::asio;

inline constexpr const char* kRpcInference = "TransformerConnectionHandler.rpc_inference";

struct SessionTimeouts {
  std::chrono::milliseconds connect{5000};  // Petals ClientConfig.connect_timeout
  std::chrono::milliseconds step{180000};   // request_timeout
  std::chrono::milliseconds close{2000};    // waiting for the server's EOF after our END
  std::size_t max_frame_bytes = 64u << 20;  // one response frame (the server's output)
};

// How hidden states travel to a server: the dtype and compression of the hidden_states entry
// of its rpc_info inference_schema (Petals casts inputs to them before serializing).
struct WireFormat {
  p2p::hivemind::DType dtype = p2p::hivemind::DType::float32;
  p2p::hivemind::CompressionType compression = p2p::hivemind::pb::NONE;
};

// rpc_info(uid) on `peer` (RemoteSequenceManager.rpc_info) → the inference_schema's
// hidden_states format. Errors for a transport failure, a handler error or a malformed info.
asio::awaitable<lp::Result<WireFormat>> fetch_inference_format(lp::Host& host,
                                                               const std::string& peer,
                                                               const std::string& uid,
                                                               std::chrono::milliseconds timeout);
// The parsing part, for tests: ExpertInfo.serialized_info bytes → the format.
lp::Result<WireFormat> parse_inference_format(p2p::hivemind::ByteView serialized_info);

// A uuid4 in its canonical text form (Petals' session_id / step_id).
std::string uuid4_string();

class ServerSession {
 public:
  // Dials `span.peer` (the host must know its addresses or hold a connection) and negotiates
  // the rpc_inference protocol within `t.connect`.
  static asio::awaitable<lp::Result<std::unique_ptr<ServerSession>>> open(lp::Host& host,
                                                                          RemoteSpan span,
                                                                          std::string dht_prefix,
                                                                          std::int64_t max_length,
                                                                          SessionTimeouts t);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // hidden f32 [batch, tokens, hidden] for positions position()..; returns the span's output
  // of the same shape. Any failure leaves the session unusable (the caller replaces it).
  asio::awaitable<lp::Result<std::vector<float>>> step(const std::vector<float>& hidden,
                                                       std::int64_t batch, std::int64_t tokens,
                                                       std::int64_t hidden_size);
  // Polite end of the session; never fails (a broken stream is simply reset).
  asio::awaitable<void> close();

  // Inputs of later steps are cast to this format (float32/NONE until set).
  void set_wire_format(WireFormat w) { wire_ = w; }
  // The adapter to ask for in the first step's metadata (Petals' active_adapter).
  void set_active_adapter(std::optional<std::string> a) { active_adapter_ = std::move(a); }
  const RemoteSpan& span() const { return span_; }
  std::int64_t position() const { return position_; }
  const std::string& session_id() const { return session_id_; }
  bool broken() const { return broken_; }

 private:
  ServerSession(lp::Host& host, RemoteSpan span, std::string dht_prefix, std::int64_t max_length,
                SessionTimeouts t, lp::YamuxStreamPtr stream);
  lp::Host& host_;
  RemoteSpan span_;
  std::string dht_prefix_, uid_, session_id_;
  std::int64_t max_length_ = 0;
  SessionTimeouts t_;
  WireFormat wire_;
  std::optional<std::string> active_adapter_;
  net::FramedStream stream_;
  std::int64_t position_ = 0;
  bool stepped_ = false, broken_ = false, closed_ = false;
};

}  // namespace kwaai::client
