#include "p2p/hivemind/net/rpc.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "p2p/libp2p/host/event.hpp"
#include "p2p/libp2p/host/stream_io.hpp"

namespace kwaai::p2p::hivemind::net {

namespace {

// Counts one inbound call against its peer for as long as it lives.
class Slot {
 public:
  Slot(std::unordered_map<lp::PeerId, std::size_t>& m, const lp::PeerId& p) : m_(m), p_(p) {
    ++m_[p_];
  }
  ~Slot() {
    auto it = m_.find(p_);
    if (it != m_.end() && --it->second == 0) m_.erase(it);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  std::unordered_map<lp::PeerId, std::size_t>& m_;
  lp::PeerId p_;
};

// Runs `body` in its own coroutine and waits for it at most `timeout`. On expiry the stream the
// body registered (if any) is reset so that its pending IO ends, and kTimeout is returned; the
// body then finishes on its own. This also bounds dials, which the host does not let us cancel.
template <class T>
struct Deadline {
  explicit Deadline(const asio::any_io_executor& ex) : done(ex) {}
  lp::Event done;
  std::optional<lp::Result<T>> result;
  lp::YamuxStreamPtr stream;
  bool timed_out = false;
  void attach(lp::YamuxStreamPtr s) {
    stream = std::move(s);
    if (timed_out) stream->reset();
  }
};

template <class T, class Body>
asio::awaitable<lp::Result<T>> run_with_deadline(asio::any_io_executor ex,
                                                 std::chrono::milliseconds timeout, Body body) {
  auto st = std::make_shared<Deadline<T>>(ex);
  asio::co_spawn(
      ex,
      [st, body = std::move(body)]() mutable -> asio::awaitable<void> {
        auto r = co_await body(st);
        if (st->timed_out) co_return;
        st->result.emplace(std::move(r));
        st->done.notify();
      },
      asio::detached);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!st->result) {
    co_await st->done.wait_until(deadline);
    if (!st->result && std::chrono::steady_clock::now() >= deadline) {
      st->timed_out = true;
      if (st->stream) st->stream->reset();
      co_return lp::make_error(lp::Errc::kTimeout,
                               "no answer within " + std::to_string(timeout.count()) + " ms");
    }
  }
  co_return std::move(*st->result);
}

lp::Error from_core(const Error& e) {
  return lp::make_error(e.code == Errc::too_large ? lp::Errc::kTooLarge : lp::Errc::kMalformed,
                        e.what());
}

}  // namespace

Bytes random_call_id() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (std::uint64_t{std::random_device{}()} << 32)};
  Bytes id(kCallIdBytes);
  for (auto& b : id) b = static_cast<std::uint8_t>(rng());
  id[6] = static_cast<std::uint8_t>((id[6] & 0x0f) | 0x40);  // uuid version 4
  id[8] = static_cast<std::uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

// ---------------------------------------------------------------------------------------------
// FramedStream

asio::awaitable<lp::Result<std::optional<StreamFrame>>> FramedStream::read() {
  std::array<std::uint8_t, 16 * 1024> buf;
  for (;;) {
    auto f = decoder_.next();
    if (!f) co_return from_core(f.error());
    if (*f) co_return std::optional<StreamFrame>(std::move(**f));
    auto n = co_await stream_->read_some(buf);
    if (!n) co_return std::move(n).error();
    if (*n == 0) {
      if (decoder_.buffered() != 0)
        co_return lp::make_error(lp::Errc::kClosed, "stream ended inside a frame");
      co_return std::optional<StreamFrame>{};
    }
    decoder_.feed(ByteView(buf.data(), *n));
  }
}

asio::awaitable<lp::Status> FramedStream::write_message(ByteView payload) {
  co_return co_await stream_->write(encode_stream_frame(FrameMarker::message, payload));
}
asio::awaitable<lp::Status> FramedStream::write_error(std::string_view message) {
  co_return co_await stream_->write(encode_error_frame(message));
}
asio::awaitable<lp::Status> FramedStream::write_end_of_stream() {
  co_return co_await stream_->write(end_of_stream_frame());
}

// ---------------------------------------------------------------------------------------------
// RpcServer

std::shared_ptr<RpcServer> RpcServer::create(const std::shared_ptr<lp::Host>& host,
                                             RpcLimits limits) {
  return std::shared_ptr<RpcServer>(new RpcServer(host, limits));
}

RpcServer::~RpcServer() = default;

void RpcServer::add_unary(const std::string& name, UnaryHandler handler) {
  unary_[name] = std::move(handler);
  route(name, &RpcServer::serve_unary);
}

void RpcServer::add_stream(const std::string& name, StreamHandler handler) {
  streaming_[name] = std::move(handler);
  route(name, &RpcServer::serve_stream);
}

// The host's handler holds the server weakly: a stream arriving after the server is gone is
// reset instead of keeping it alive.
void RpcServer::route(const std::string& name, Serve serve) {
  auto host = host_.lock();
  if (!host) return;
  std::weak_ptr<RpcServer> weak = weak_from_this();
  host->set_handler(
      name,
      [weak, name, serve](lp::YamuxStreamPtr s, lp::ConnectionPtr c) -> asio::awaitable<void> {
        auto self = weak.lock();
        if (!self) {
          s->reset();
          co_return;
        }
        co_await ((*self).*serve)(name, std::move(s), std::move(c));
      });
}

void RpcServer::remove_all() {
  auto host = host_.lock();
  if (host) {
    for (const auto& [name, _] : unary_) host->remove_handler(name);
    for (const auto& [name, _] : streaming_) host->remove_handler(name);
  }
  unary_.clear();
  streaming_.clear();
}

std::size_t RpcServer::in_flight(const lp::PeerId& peer) const {
  auto it = in_flight_.find(peer);
  return it == in_flight_.end() ? 0 : it->second;
}

asio::awaitable<void> RpcServer::serve_unary(std::string name, lp::YamuxStreamPtr s,
                                             lp::ConnectionPtr c) {
  auto self = shared_from_this();
  const lp::PeerId caller = c->peer;
  if (in_flight(caller) >= limits_.max_inbound_per_peer) {
    spdlog::debug("rpc {}: {} has {} calls running, refusing", name, caller.to_string(),
                  in_flight(caller));
    s->reset();
    co_return;
  }
  Slot slot(in_flight_, caller);

  lp::Result<std::optional<Bytes>> msg = lp::make_error(lp::Errc::kClosed, "");
  {
    lp::Watchdog dog(s->session().executor(), limits_.request_read_timeout, [s] { s->reset(); });
    msg = co_await lp::read_delimited(*s, limits_.max_message_bytes);
  }
  if (!msg || !*msg) {
    // Oversized, truncated or silent: nothing to answer to (no call id); close the stream.
    if (!msg)
      spdlog::debug("rpc {}: bad request from {}: {}", name, caller.to_string(),
                    msg.error().to_string());
    s->reset();
    co_return;
  }
  auto call = parse_unary_call(**msg);
  if (!call) {
    spdlog::debug("rpc {}: malformed envelope from {}: {}", name, caller.to_string(),
                  call.error().what());
    s->reset();
    co_return;
  }
  UnaryReply reply;
  reply.call_id = call->call_id;
  auto it = unary_.find(name);
  if (call->proto != name) {
    reply.is_error = true;
    const std::string text = "protocol mismatch: stream " + name + ", envelope " + call->proto;
    reply.payload.assign(text.begin(), text.end());
  } else if (it == unary_.end()) {
    reply.is_error = true;
    const std::string text = "handler " + name + " is gone";
    reply.payload.assign(text.begin(), text.end());
  } else {
    UnaryHandler handler = it->second;  // a copy: the map may change while we await
    UnaryOutcome out;
    try {
      out = co_await handler(caller, std::move(call->data));
    } catch (const std::exception& e) {
      out = UnaryOutcome::failure(std::string("RuntimeError('") + e.what() + "')");
    }
    reply.is_error = !out.ok;
    if (out.ok)
      reply.payload = std::move(out.response);
    else
      reply.payload.assign(out.error.begin(), out.error.end());
  }
  auto bytes = encode_unary_reply(reply, limits_.max_message_bytes);
  if (!bytes) {
    // The response exceeds the envelope limit: say so instead of leaving the caller waiting.
    UnaryReply err{reply.call_id, true, {}};
    const std::string text =
        "response exceeds the " + std::to_string(limits_.max_message_bytes) + "-byte message limit";
    err.payload.assign(text.begin(), text.end());
    bytes = encode_unary_reply(err, limits_.max_message_bytes);
  }
  if (!bytes || !(co_await s->write(*bytes))) {
    s->reset();
    co_return;
  }
  (void)s->close_write();
}

asio::awaitable<void> RpcServer::serve_stream(std::string name, lp::YamuxStreamPtr s,
                                              lp::ConnectionPtr c) {
  auto self = shared_from_this();
  const lp::PeerId caller = c->peer;
  FramedStream fs(s, limits_.max_stream_frame_bytes);
  if (in_flight(caller) >= limits_.max_inbound_per_peer) {
    (void)co_await fs.write_error("too many concurrent requests from this peer");
    (void)fs.close_write();
    co_return;
  }
  Slot slot(in_flight_, caller);
  auto it = streaming_.find(name);
  if (it == streaming_.end()) {
    s->reset();
    co_return;
  }
  StreamHandler handler = it->second;
  std::optional<std::string> failure;
  try {
    co_await handler(caller, fs);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (failure) (void)co_await fs.write_error(*failure);
  (void)fs.close_write();
}

// ---------------------------------------------------------------------------------------------
// Clients

namespace {

asio::awaitable<lp::Result<UnaryAnswer>> unary_exchange(std::shared_ptr<lp::Host> host,
                                                        lp::PeerId peer, std::string name,
                                                        Bytes bytes, std::size_t max_bytes,
                                                        std::shared_ptr<Deadline<UnaryAnswer>> st) {
  std::vector<std::string> protocols{
      name};  // not inline: GCC 12 mis-handles init lists in co_await
  auto ns = co_await host->new_stream(peer, std::move(protocols));
  if (!ns) co_return std::move(ns).error();
  auto s = ns->stream;
  st->attach(s);
  if (auto w = co_await s->write(bytes); !w) co_return std::move(w).error();
  // No half-close here: the callee would take it as a cancellation.
  auto msg = co_await lp::read_delimited(*s, max_bytes);
  if (!msg) {
    s->reset();
    co_return std::move(msg).error();
  }
  if (!*msg)
    co_return lp::make_error(lp::Errc::kClosed, name + ": stream closed without an answer");
  auto reply = parse_unary_reply(**msg);
  (void)s->close_write();
  if (!reply) co_return from_core(reply.error());
  UnaryAnswer a;
  a.is_error = reply->is_error;
  if (a.is_error)
    a.error.assign(reply->payload.begin(), reply->payload.end());
  else
    a.response = std::move(reply->payload);
  co_return a;
}

asio::awaitable<lp::Result<std::vector<Bytes>>> stream_exchange(
    std::shared_ptr<lp::Host> host, lp::PeerId peer, std::string name, std::vector<Bytes> requests,
    std::size_t max_frame, std::size_t max_responses,
    std::shared_ptr<Deadline<std::vector<Bytes>>> st) {
  std::vector<std::string> protocols{
      name};  // not inline: GCC 12 mis-handles init lists in co_await
  auto ns = co_await host->new_stream(peer, std::move(protocols));
  if (!ns) co_return std::move(ns).error();
  st->attach(ns->stream);
  FramedStream fs(ns->stream, max_frame);
  for (const auto& r : requests)
    if (auto w = co_await fs.write_message(r); !w) co_return std::move(w).error();
  if (auto w = co_await fs.write_end_of_stream(); !w) co_return std::move(w).error();
  std::vector<Bytes> out;
  for (;;) {
    auto f = co_await fs.read();
    if (!f) co_return std::move(f).error();
    if (!*f) break;  // EOF: the server finished
    if ((*f)->marker == FrameMarker::error) {
      auto text = parse_rpc_error((*f)->payload);
      fs.reset();
      co_return lp::make_error(lp::Errc::kProtocol,
                               name + ": " + (text ? *text : std::string("bad RPCError")));
    }
    if (out.size() >= max_responses) {
      fs.reset();
      co_return lp::make_error(lp::Errc::kResourceLimit, name + ": too many responses");
    }
    out.push_back(std::move((*f)->payload));
  }
  (void)fs.close_write();
  co_return out;
}

}  // namespace

asio::awaitable<lp::Result<UnaryAnswer>> call_unary(lp::Host& host, const lp::PeerId& peer,
                                                    const std::string& name, ByteView request,
                                                    CallOptions options) {
  UnaryCall call;
  call.call_id = options.call_id ? *options.call_id : random_call_id();
  call.peer = peer.bytes();
  call.proto = name;
  call.data.assign(request.begin(), request.end());
  auto encoded = encode_unary_call(call, options.max_message_bytes);
  if (!encoded) co_return from_core(encoded.error());
  auto hostp = host.shared_from_this();
  const std::size_t max_bytes = options.max_message_bytes;
  Bytes bytes = std::move(*encoded);
  auto body = [hostp, peer, name, bytes, max_bytes](std::shared_ptr<Deadline<UnaryAnswer>> st) {
    return unary_exchange(hostp, peer, name, bytes, max_bytes, std::move(st));
  };
  co_return co_await run_with_deadline<UnaryAnswer>(host.executor(), options.timeout,
                                                    std::move(body));
}

asio::awaitable<lp::Result<std::vector<Bytes>>> call_stream(lp::Host& host, const lp::PeerId& peer,
                                                            const std::string& name,
                                                            const std::vector<Bytes>& requests,
                                                            CallOptions options,
                                                            std::size_t max_responses) {
  auto hostp = host.shared_from_this();
  const std::size_t max_frame = options.max_message_bytes;
  auto body = [hostp, peer, name, requests, max_frame,
               max_responses](std::shared_ptr<Deadline<std::vector<Bytes>>> st) {
    return stream_exchange(hostp, peer, name, requests, max_frame, max_responses, std::move(st));
  };
  co_return co_await run_with_deadline<std::vector<Bytes>>(host.executor(), options.timeout,
                                                           std::move(body));
}

}  // namespace kwaai::p2p::hivemind::net
