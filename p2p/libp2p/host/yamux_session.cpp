// Yamux session: frame reader/dispatcher, the serialized writer, keep-alive, open/close.
#include "p2p/libp2p/host/yamux_session.hpp"

#include <spdlog/spdlog.h>

#include "p2p/libp2p/host/asio.hpp"

#include "p2p/libp2p/yamux_frame.hpp"

namespace kwaai::p2p::libp2p {

using Clock = std::chrono::steady_clock;
using yamux::FrameType;
namespace yflags = yamux::flags;

std::shared_ptr<YamuxSession> YamuxSession::create(std::unique_ptr<ByteStream> conn, Role role,
                                                   YamuxConfig config) {
  return std::shared_ptr<YamuxSession>(new YamuxSession(std::move(conn), role, config));
}

YamuxSession::YamuxSession(std::unique_ptr<ByteStream> conn, Role role, YamuxConfig config)
    : executor_(conn->executor()),
      conn_(std::move(conn)),
      role_(role),
      config_(config),
      description_("yamux/" + conn_->describe()),
      next_id_(role == Role::kClient ? 1 : 2),
      queue_nonempty_(executor_),
      queue_space_(executor_),
      queue_drained_(executor_),
      keepalive_timer_(executor_),
      last_activity_(Clock::now()) {}

YamuxSession::~YamuxSession() {
  if (conn_) conn_->close();
}

void YamuxSession::start(InboundHandler on_inbound) {
  if (started_) return;
  started_ = true;
  on_inbound_ = std::move(on_inbound);
  auto self = shared_from_this();
  asio::co_spawn(
      executor_, [self]() { return self->read_loop(); }, asio::detached);
  asio::co_spawn(
      executor_, [self]() { return self->write_loop(); }, asio::detached);
  // Measure the RTT once at start (js does the same); window auto-tuning uses it.
  asio::co_spawn(
      executor_,
      [self]() -> asio::awaitable<void> {
        auto r = co_await self->ping(self->config_.ping_timeout);
        if (r) self->rtt_ = *r;
      },
      asio::detached);
  if (config_.keepalive_interval.count() > 0)
    asio::co_spawn(
        executor_, [self]() { return self->keepalive_loop(); }, asio::detached);
}

void YamuxSession::enqueue(std::uint8_t type, std::uint16_t flags, std::uint32_t id,
                           std::uint32_t length, ByteView payload) {
  if (closed_) return;
  if (payload.empty()) {
    // Control frames skip the byte budget (they free the peer's resources) but a peer that
    // makes us queue thousands of them while we cannot write (ping floods) is cut off.
    if (++queued_control_ > config_.max_queued_control) {
      close("peer made us queue more than " + std::to_string(config_.max_queued_control) +
            " control frames");
      return;
    }
  }
  // Frames are appended to one contiguous buffer that the writer swaps out whole: no
  // per-frame allocation and no second copy when coalescing.
  yamux::Header h{static_cast<FrameType>(type), flags, id, length};
  yamux::append_header(h, out_);
  append(out_, payload);
  queue_nonempty_.notify();
}

asio::awaitable<void> YamuxSession::write_loop() {
  auto self = shared_from_this();
  Bytes batch;
  while (!closed_) {
    if (out_.empty()) {
      queue_drained_.notify();
      co_await queue_nonempty_.wait();
      continue;
    }
    // Everything queued goes out in one write (one Noise frame run, one syscall); both
    // buffers keep their capacity, so steady streaming allocates nothing here.
    batch.clear();
    batch.swap(out_);
    queued_control_ = 0;
    queue_space_.notify();
    auto st = co_await conn_->write(batch);
    if (!st) {
      close("write failed: " + st.error().to_string());
      co_return;
    }
  }
  queue_drained_.notify();
}

asio::awaitable<void> YamuxSession::read_loop() {
  auto self = shared_from_this();
  BufferedReader reader(*conn_);
  std::array<std::uint8_t, yamux::kHeaderSize> hdr{};
  Bytes scratch;
  auto protocol_error = [this](const std::string& why) {
    enqueue(static_cast<std::uint8_t>(FrameType::kGoAway), 0, 0,
            static_cast<std::uint32_t>(yamux::GoAwayCode::kProtocolError));
    return shutdown_after_error(why);
  };
  while (!closed_) {
    auto st = co_await reader.read_exact(hdr);
    if (!st) {
      close(st.error().code == Errc::kClosed && reader.buffered() == 0
                ? std::string("connection closed by peer")
                : "read failed: " + st.error().to_string());
      co_return;
    }
    last_activity_ = Clock::now();
    auto h = yamux::decode_header(hdr);
    if (!h) {
      co_await protocol_error("bad frame header: " + h.error().to_string());
      co_return;
    }
    if (h->type == FrameType::kData && h->length > 0) {
      // js sends DATA frames as large as the window it was granted; the cap is the largest
      // window we ever grant.
      if (h->length > config_.max_window) {
        co_await protocol_error("DATA frame of " + std::to_string(h->length) +
                                " bytes exceeds max window");
        co_return;
      }
      auto ds = co_await read_data_frame(reader, h->flags, h->stream_id, h->length, scratch);
      if (closed_) co_return;
      if (!ds) {
        co_await protocol_error(ds.error().to_string());
        co_return;
      }
      continue;
    }
    auto hs =
        handle_frame(static_cast<std::uint8_t>(h->type), h->flags, h->stream_id, h->length, {});
    if (!hs) {
      co_await protocol_error(hs.error().to_string());
      co_return;
    }
  }
}

asio::awaitable<Status> YamuxSession::read_data_frame(BufferedReader& reader, std::uint16_t flags,
                                                      std::uint32_t id, std::uint32_t length,
                                                      Bytes& scratch) {
  YamuxStreamPtr stream;
  if (auto st = handle_stream_flags(flags, id, stream); !st) co_return st;
  // The window is checked before any byte is stored: it is what bounds the receive ring. A
  // frame over the window is still read (into scratch, at most max_window bytes) before the
  // go-away, so the peer is not cut off mid-write and sees the protocol error.
  Status admitted = stream ? stream->admit_data(length) : Status{};
  const bool keep = admitted && stream && !stream->reset_ && !stream->remote_fin_;
  std::size_t left = length;
  while (left > 0) {
    std::span<std::uint8_t> dst;
    if (keep) {
      dst = stream->rbuf_.prepare(left);
    } else {  // unknown, refused or finished stream: the bytes are counted and dropped
      scratch.resize(std::min<std::size_t>(left, 64 * 1024));
      dst = std::span<std::uint8_t>(scratch.data(), std::min(left, scratch.size()));
    }
    auto n = co_await reader.read_some(dst);
    if (!n || *n == 0) {
      close("read failed mid-frame: " + (n ? std::string("eof") : n.error().to_string()));
      co_return Status{};
    }
    left -= *n;
    if (keep) {
      stream->rbuf_.commit(*n);
      stream->readable_.notify();  // the reader can start on a frame before it is complete
    }
  }
  if (!admitted) co_return admitted;
  finish_stream_flags(flags, id, stream);
  co_return Status{};
}

asio::awaitable<void> YamuxSession::shutdown_after_error(std::string reason) {
  // Give the queued go-away a moment to leave, then drop the connection.
  spdlog::warn("{}: protocol error, closing: {}", description_, reason);
  if (!out_.empty()) co_await queue_drained_.wait_until(Clock::now() + config_.close_flush_timeout);
  close("protocol error: " + reason);
}

Status YamuxSession::handle_stream_flags(std::uint16_t flags, std::uint32_t id,
                                         YamuxStreamPtr& stream) {
  auto it = streams_.find(id);
  if (it != streams_.end()) stream = it->second;
  if (flags & yflags::kSyn) {
    const bool remote_parity = yamux::is_client_stream(id) == (role_ == Role::kServer);
    if (!remote_parity)
      return make_error(Errc::kProtocol, "SYN for stream " + std::to_string(id) +
                                             " with our own parity (both endpoints same role)");
    if (stream)
      return make_error(Errc::kProtocol, "duplicate SYN for stream " + std::to_string(id));
    if (goaway_sent_ || inbound_count_ >= config_.max_inbound_streams) {
      spdlog::debug("{}: refusing stream {} ({} inbound)", description_, id, inbound_count_);
      enqueue(static_cast<std::uint8_t>(FrameType::kWindowUpdate), yflags::kRst, id, 0);
      return Status{};  // stream stays unknown: its data is drained
    }
    stream = std::make_shared<YamuxStream>(shared_from_this(), id, true);
    streams_.emplace(id, stream);
    ++inbound_count_;
    // ACK at once: go blocks OpenStream once 256 of its streams are un-ACKed.
    enqueue(static_cast<std::uint8_t>(FrameType::kWindowUpdate), yflags::kAck, id, 0);
    if (on_inbound_) on_inbound_(stream);
  }
  return Status{};
}

Status YamuxSession::handle_frame(std::uint8_t type, std::uint16_t flags, std::uint32_t id,
                                  std::uint32_t length, ByteView payload) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kPing:
      if (flags & yflags::kSyn) {
        enqueue(static_cast<std::uint8_t>(FrameType::kPing), yflags::kAck, 0, length);
      } else if (flags & yflags::kAck) {
        auto it = pings_.find(length);
        if (it != pings_.end()) {
          it->second->answered = true;
          it->second->done.notify();
          pings_.erase(it);
        }
      }
      return Status{};
    case FrameType::kGoAway:
      remote_goaway_ = true;
      if (length != static_cast<std::uint32_t>(yamux::GoAwayCode::kNormal)) {
        // go-yamux v5 sends application codes too: anything non-zero ends the session.
        close("peer sent go-away code " + std::to_string(length));
      } else {
        spdlog::debug("{}: peer sent go-away (normal)", description_);
      }
      return Status{};
    case FrameType::kData:
    case FrameType::kWindowUpdate: {
      YamuxStreamPtr stream;
      if (auto st = handle_stream_flags(flags, id, stream); !st) return st;
      if (!stream) return Status{};  // unknown or refused stream: frame dropped
      if (static_cast<FrameType>(type) == FrameType::kData) {
        if (auto st = stream->on_data(payload); !st) return st;
      } else if (!(flags & yflags::kRst)) {
        // go-yamux v5 puts an error code in `length` of RST frames: not a window delta.
        stream->on_window_update(length);
      }
      finish_stream_flags(flags, id, stream);
      return Status{};
    }
  }
  return make_error(Errc::kProtocol, "unknown frame type " + std::to_string(type));
}

void YamuxSession::finish_stream_flags(std::uint16_t flags, std::uint32_t id,
                                       const YamuxStreamPtr& stream) {
  if (!stream) return;
  if (flags & yflags::kRst) {
    stream->on_remote_reset();
    stream_finished(id);
  } else if (flags & yflags::kFin) {
    stream->on_remote_fin();
    if (stream->local_fin_) stream_finished(id);
  }
}

void YamuxSession::stream_finished(std::uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  if (it->second->inbound_)
    --inbound_count_;
  else
    --outbound_count_;
  streams_.erase(it);
}

asio::awaitable<Result<YamuxStreamPtr>> YamuxSession::open_stream() {
  auto self = shared_from_this();
  if (closed_) co_return make_error(Errc::kClosed, description_ + ": closed: " + close_reason_);
  if (remote_goaway_ || goaway_sent_)
    co_return make_error(Errc::kClosed, description_ + ": go-away received or sent");
  if (outbound_count_ >= config_.max_outbound_streams)
    co_return make_error(Errc::kResourceLimit,
                         description_ + ": " + std::to_string(outbound_count_) +
                             " outbound streams open (limit " +
                             std::to_string(config_.max_outbound_streams) + ")");
  if (next_id_ > 0xFFFFFFF0u) co_return make_error(Errc::kResourceLimit, "stream ids exhausted");
  const std::uint32_t id = next_id_;
  next_id_ += 2;
  auto stream = std::make_shared<YamuxStream>(self, id, false);
  streams_.emplace(id, stream);
  ++outbound_count_;
  // SYN on a zero-delta window update, as go does; data may follow before the ACK.
  enqueue(static_cast<std::uint8_t>(FrameType::kWindowUpdate), yflags::kSyn, id, 0);
  co_return stream;
}

asio::awaitable<Result<std::chrono::nanoseconds>> YamuxSession::ping(
    std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  if (closed_) co_return make_error(Errc::kClosed, description_ + ": closed: " + close_reason_);
  const std::uint32_t value = next_ping_++;
  auto pending = std::make_shared<PendingPing>(executor_);
  pings_[value] = pending;
  const auto start = Clock::now();
  enqueue(static_cast<std::uint8_t>(FrameType::kPing), yflags::kSyn, 0, value);
  co_await pending->done.wait_until(start + timeout);
  pings_.erase(value);
  if (pending->answered)
    co_return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
  if (closed_) co_return make_error(Errc::kClosed, description_ + ": closed: " + close_reason_);
  co_return make_error(Errc::kTimeout, description_ + ": no ping reply within " +
                                           std::to_string(timeout.count()) + " ms");
}

asio::awaitable<void> YamuxSession::keepalive_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    // A member timer, so close() can cancel the wait and the session is freed at once.
    keepalive_timer_.expires_after(config_.keepalive_interval);
    boost::system::error_code ec;
    co_await keepalive_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) co_return;
    auto r = co_await ping(config_.ping_timeout);
    if (!r) {
      if (!closed_) close("keep-alive failed: " + r.error().to_string());
      co_return;
    }
    rtt_ = *r;
  }
}

asio::awaitable<void> YamuxSession::shutdown() {
  auto self = shared_from_this();
  if (closed_) co_return;
  if (!goaway_sent_) {
    goaway_sent_ = true;
    enqueue(static_cast<std::uint8_t>(FrameType::kGoAway), 0, 0,
            static_cast<std::uint32_t>(yamux::GoAwayCode::kNormal));
  }
  if (!out_.empty()) co_await queue_drained_.wait_until(Clock::now() + config_.close_flush_timeout);
  close("local shutdown");
}

void YamuxSession::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  close_reason_ = reason;
  spdlog::debug("{}: closed: {}", description_, reason);
  conn_->close();
  auto streams = std::move(streams_);
  streams_.clear();
  inbound_count_ = outbound_count_ = 0;
  for (auto& [id, s] : streams) s->on_remote_reset();
  out_.clear();
  queued_control_ = 0;
  queue_nonempty_.notify();
  queue_space_.notify();
  queue_drained_.notify();
  keepalive_timer_.cancel();
  for (auto& [v, p] : pings_) p->done.notify();
  pings_.clear();
  if (on_close_) {
    auto fn = std::move(on_close_);
    on_close_ = nullptr;
    fn(reason);
  }
}

}  // namespace kwaai::p2p::libp2p
