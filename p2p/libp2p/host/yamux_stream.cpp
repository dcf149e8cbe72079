// Per-stream half of the Yamux session: receive buffering bounded by the advertised window,
// window updates with auto-tuning, and the send side waiting on the peer's window.
#include <algorithm>
#include <cstring>

#include "p2p/libp2p/host/yamux_session.hpp"
#include "p2p/libp2p/yamux_frame.hpp"

namespace kwaai::p2p::libp2p {

using Clock = std::chrono::steady_clock;

YamuxStream::YamuxStream(std::shared_ptr<YamuxSession> session, std::uint32_t id, bool inbound)
    : session_(std::move(session)),
      id_(id),
      inbound_(inbound),
      readable_(session_->executor()),
      writable_(session_->executor()),
      recv_credit_(yamux::kInitialWindow),
      window_size_(yamux::kInitialWindow),
      epoch_(Clock::now()),
      send_window_(yamux::kInitialWindow) {}

std::span<std::uint8_t> RecvRing::prepare(std::size_t n) {
  if (n == 0) return {};      // below, the ring is never full, so tail == head means empty
  if (size_ == 0) head_ = 0;  // empty: restart at the front, the widest contiguous span
  if (cap_ - size_ < n) grow(size_ + n);
  const std::size_t tail = head_ + size_ < cap_ ? head_ + size_ : head_ + size_ - cap_;
  // Free space runs from the tail to the end of the storage, or up to the head if it wrapped.
  const std::size_t contiguous = tail >= head_ ? cap_ - tail : head_ - tail;
  return {data_.get() + tail, std::min(n, contiguous)};
}

void RecvRing::grow(std::size_t need) {
  // Small first (a thousand streams of small RPCs must not cost a big block each), doubling.
  std::size_t cap = std::max<std::size_t>(cap_ * 2, 4096);
  while (cap < need) cap *= 2;
  auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(cap);
  const std::size_t got = read(std::span<std::uint8_t>(fresh.get(), size_));  // unwraps
  data_ = std::move(fresh);
  cap_ = cap;
  head_ = 0;
  size_ = got;
}

void RecvRing::append(ByteView b) {
  while (!b.empty()) {
    auto dst = prepare(b.size());
    std::memcpy(dst.data(), b.data(), dst.size());
    commit(dst.size());
    b = b.subspan(dst.size());
  }
}

std::size_t RecvRing::read(std::span<std::uint8_t> out) {
  std::size_t done = 0;
  while (done < out.size() && size_ > 0) {
    const std::size_t n = std::min({out.size() - done, size_, cap_ - head_});
    std::memcpy(out.data() + done, data_.get() + head_, n);
    done += n;
    size_ -= n;
    head_ = head_ + n == cap_ ? 0 : head_ + n;
  }
  return done;
}

Status YamuxStream::admit_data(std::size_t length) {
  if (length > recv_credit_) {
    return make_error(Errc::kProtocol,
                      "stream " + std::to_string(id_) + ": " + std::to_string(length) +
                          " bytes exceed receive window " + std::to_string(recv_credit_));
  }
  recv_credit_ -= static_cast<std::uint32_t>(length);
  return Status{};
}

Status YamuxStream::on_data(ByteView payload) {
  if (auto st = admit_data(payload.size()); !st) return st;
  if (reset_ || remote_fin_) return Status{};  // late bytes after close: counted, dropped
  rbuf_.append(payload);
  readable_.notify();
  return Status{};
}

void YamuxStream::on_window_update(std::uint32_t delta) {
  // The window may grow beyond 32 bits only through a misbehaving peer; 64-bit math keeps
  // that from wrapping, and the frame size cap keeps single frames bounded anyway.
  send_window_ += delta;
  writable_.notify();
}

void YamuxStream::on_remote_fin() {
  remote_fin_ = true;
  readable_.notify();
}

void YamuxStream::on_remote_reset() {
  reset_ = true;
  readable_.notify();
  writable_.notify();
}

void YamuxStream::unread(ByteView b) {
  Bytes merged(b.begin(), b.end());
  append(merged, prefix_);
  prefix_ = std::move(merged);
}

void YamuxStream::maybe_send_window_update() {
  if (reset_ || remote_fin_ || session_->closed()) return;
  // Like go-yamux: return credit once half the window was consumed; if that happened within
  // 4 RTTs of the previous update the stream is fast, so double the window (up to the cap).
  if (consumed_ < window_size_ / 2) return;
  const auto now = Clock::now();
  // Loopback RTTs are microseconds and dominated by scheduling noise; a 1 ms floor keeps the
  // growth decision meaningful there.
  const auto rtt = std::max<Clock::duration>(session_->rtt(), std::chrono::milliseconds(1));
  std::uint32_t growth = 0;
  if (now - epoch_ < 4 * rtt && window_size_ < session_->config().max_window) {
    growth = std::min(window_size_, session_->config().max_window - window_size_);
  }
  const std::uint32_t delta = consumed_ + growth;
  window_size_ += growth;
  recv_credit_ += delta;
  consumed_ = 0;
  epoch_ = now;
  session_->enqueue(static_cast<std::uint8_t>(yamux::FrameType::kWindowUpdate), 0, id_, delta);
}

asio::awaitable<Result<std::size_t>> YamuxStream::read_some(std::span<std::uint8_t> buf) {
  auto self = shared_from_this();
  if (buf.empty()) co_return std::size_t{0};
  if (!prefix_.empty()) {
    std::size_t n = std::min(buf.size(), prefix_.size());
    std::memcpy(buf.data(), prefix_.data(), n);
    prefix_.erase(prefix_.begin(), prefix_.begin() + static_cast<std::ptrdiff_t>(n));
    co_return n;
  }
  for (;;) {
    if (reset_) co_return make_error(Errc::kClosed, "stream " + std::to_string(id_) + " reset");
    if (rbuf_.size() > 0) {
      const std::size_t n = rbuf_.read(buf);
      consumed_ += static_cast<std::uint32_t>(n);
      maybe_send_window_update();
      co_return n;
    }
    if (remote_fin_) co_return std::size_t{0};
    if (session_->closed())
      co_return make_error(Errc::kClosed, "session closed: " + session_->close_reason());
    co_await readable_.wait();
  }
}

asio::awaitable<Status> YamuxStream::read_exact(std::span<std::uint8_t> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    auto n = co_await read_some(buf.subspan(got));
    if (!n) co_return std::move(n).error();
    if (*n == 0)
      co_return make_error(Errc::kClosed, "stream " + std::to_string(id_) + ": eof after " +
                                              std::to_string(got) + " of " +
                                              std::to_string(buf.size()) + " bytes");
    got += *n;
  }
  co_return Status{};
}

asio::awaitable<Status> YamuxStream::write(ByteView data) {
  auto self = shared_from_this();
  // Writers on one stream take turns so their bytes are not interleaved.
  while (writing_ && !reset_ && !session_->closed()) co_await writable_.wait();
  writing_ = true;
  std::size_t off = 0;
  Status result;
  while (off < data.size()) {
    if (reset_) {
      result = make_error(Errc::kClosed, "stream " + std::to_string(id_) + " reset");
      break;
    }
    if (local_fin_) {
      result = make_error(Errc::kState, "stream " + std::to_string(id_) + ": write after close");
      break;
    }
    if (session_->closed()) {
      result = make_error(Errc::kClosed, "session closed: " + session_->close_reason());
      break;
    }
    if (send_window_ == 0) {
      co_await writable_.wait();
      continue;
    }
    if (!session_->queue_has_room()) {
      co_await session_->queue_space_.wait();
      continue;
    }
    const std::size_t n = std::min<std::uint64_t>(
        {data.size() - off, send_window_, session_->config().max_send_frame});
    send_window_ -= n;
    session_->enqueue(static_cast<std::uint8_t>(yamux::FrameType::kData), 0, id_,
                      static_cast<std::uint32_t>(n), data.subspan(off, n));
    off += n;
  }
  writing_ = false;
  writable_.notify();  // let the next writer on this stream go
  co_return result;
}

Status YamuxStream::close_write() {
  if (reset_) return make_error(Errc::kClosed, "stream " + std::to_string(id_) + " reset");
  if (local_fin_) return Status{};
  if (session_->closed())
    return make_error(Errc::kClosed, "session closed: " + session_->close_reason());
  local_fin_ = true;
  session_->enqueue(static_cast<std::uint8_t>(yamux::FrameType::kWindowUpdate), yamux::flags::kFin,
                    id_, 0);
  if (remote_fin_) session_->stream_finished(id_);
  return Status{};
}

void YamuxStream::reset() {
  if (reset_) return;
  const bool was_done = local_fin_ && remote_fin_;
  reset_ = true;
  readable_.notify();
  writable_.notify();
  if (was_done || session_->closed()) return;
  session_->enqueue(static_cast<std::uint8_t>(yamux::FrameType::kWindowUpdate), yamux::flags::kRst,
                    id_, 0);
  session_->stream_finished(id_);
}

}  // namespace kwaai::p2p::libp2p
