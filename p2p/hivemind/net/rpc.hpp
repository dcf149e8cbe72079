// hivemind RPCs over libp2p streams (spec §2): the protocol id is the handler name
// ("DHTProtocol.rpc_ping"), unary handlers exchange one uvarint-delimited
// PersistentConnectionRequest each way, streaming handlers exchange marker+length frames.
//
// Threading: everything runs on the host's single-threaded executor.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "p2p/hivemind/framing.hpp"
#include "p2p/libp2p/host/host.hpp"

namespace kwaai::p2p::hivemind::net {

namespace lp = kwaai::p2p::libp2p;
namespace asio = boost::asio;

struct RpcLimits {
  std::size_t max_message_bytes = kUnaryMaxMessageBytes;  // each way, whole envelope
  // Inbound calls one peer may have running at once, across all handlers of this server;
  // further calls are answered with an error (unary) or an error frame (streaming).
  std::size_t max_inbound_per_peer = 32;
  // A caller that opens a stream and never sends its request holds a slot; this bounds it.
  std::chrono::milliseconds request_read_timeout{10000};
  std::size_t max_stream_frame_bytes = kDefaultMaxStreamFrameBytes;
};

// A handler's answer: the serialized response protobuf, or an error text that travels as
// unaryResponse.error (hivemind raises P2PHandlerError with it).
struct UnaryOutcome {
  bool ok = true;
  Bytes response;
  std::string error;
  static UnaryOutcome success(Bytes b) { return {true, std::move(b), {}}; }
  static UnaryOutcome failure(std::string e) { return {false, {}, std::move(e)}; }
};

using UnaryHandler =
    std::function<asio::awaitable<UnaryOutcome>(const lp::PeerId& caller, Bytes request)>;

// A stream carrying hivemind frames (§2.3). Reads are bounded by the frame limit.
class FramedStream {
 public:
  FramedStream(lp::YamuxStreamPtr s, std::size_t max_frame_bytes)
      : stream_(std::move(s)), decoder_(max_frame_bytes) {}
  // The next frame, nullopt at a clean EOF between frames, an error on a broken frame/stream.
  asio::awaitable<lp::Result<std::optional<StreamFrame>>> read();
  asio::awaitable<lp::Status> write_message(ByteView payload);
  asio::awaitable<lp::Status> write_error(std::string_view message);
  // The caller's END_OF_STREAM (an empty RPCError); the stream stays open for reading.
  asio::awaitable<lp::Status> write_end_of_stream();
  lp::Status close_write() { return stream_->close_write(); }
  void reset() { stream_->reset(); }
  lp::YamuxStream& stream() { return *stream_; }

 private:
  lp::YamuxStreamPtr stream_;
  StreamFrameDecoder decoder_;
};

// Streaming handler: gets the framed stream after negotiation and the per-peer slot; the
// server closes the write side when it returns (the caller's end-of-responses signal).
using StreamHandler =
    std::function<asio::awaitable<void>(const lp::PeerId& caller, FramedStream& stream)>;

class RpcServer : public std::enable_shared_from_this<RpcServer> {
 public:
  static std::shared_ptr<RpcServer> create(const std::shared_ptr<lp::Host>& host,
                                           RpcLimits limits = {});
  ~RpcServer();
  void add_unary(const std::string& name, UnaryHandler handler);
  void add_stream(const std::string& name, StreamHandler handler);
  // Unregisters every handler this server added (calls in flight finish).
  void remove_all();
  std::size_t in_flight(const lp::PeerId& peer) const;
  const RpcLimits& limits() const { return limits_; }

 private:
  RpcServer(std::weak_ptr<lp::Host> host, RpcLimits limits)
      : host_(std::move(host)), limits_(limits) {}
  asio::awaitable<void> serve_unary(std::string name, lp::YamuxStreamPtr s, lp::ConnectionPtr c);
  asio::awaitable<void> serve_stream(std::string name, lp::YamuxStreamPtr s, lp::ConnectionPtr c);
  using Serve = asio::awaitable<void> (RpcServer::*)(std::string, lp::YamuxStreamPtr,
                                                     lp::ConnectionPtr);
  // Registers `name` on the host, dispatching its streams to `serve`.
  void route(const std::string& name, Serve serve);

  std::weak_ptr<lp::Host> host_;
  RpcLimits limits_;
  std::unordered_map<std::string, UnaryHandler> unary_;
  std::unordered_map<std::string, StreamHandler> streaming_;
  std::unordered_map<lp::PeerId, std::size_t> in_flight_;
};

struct CallOptions {
  std::chrono::milliseconds timeout{3000};  // hivemind DHT wait_timeout
  std::size_t max_message_bytes = kUnaryMaxMessageBytes;
  std::optional<Bytes> call_id;  // 16 bytes; random (uuid4-like) when absent
};

// The outcome of a unary call: a transport failure (kTimeout, kClosed, kNegotiationFailed...),
// or the remote's answer — which may itself be a handler error.
struct UnaryAnswer {
  bool is_error = false;
  Bytes response;     // when !is_error
  std::string error;  // unaryResponse.error text
};

// Calls a unary handler on `peer` (dialing it through the host if needed). Never half-closes
// before the answer; resets the stream on timeout.
asio::awaitable<lp::Result<UnaryAnswer>> call_unary(lp::Host& host, const lp::PeerId& peer,
                                                    const std::string& name, ByteView request,
                                                    CallOptions options = {});

// Unary-in / stream-out or stream-in / stream-out client helper: sends every request frame,
// END_OF_STREAM, then collects responses until EOF. An error frame ends the call with its text
// as an error (kProtocol). Bounded by the timeout and by `max_responses`.
asio::awaitable<lp::Result<std::vector<Bytes>>> call_stream(lp::Host& host, const lp::PeerId& peer,
                                                            const std::string& name,
                                                            const std::vector<Bytes>& requests,
                                                            CallOptions options = {},
                                                            std::size_t max_responses = 1024);

Bytes random_call_id();

}  // namespace kwaai::p2p::hivemind::net
