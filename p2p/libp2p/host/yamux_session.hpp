// Yamux session logic (/yamux/1.0.0) over any ByteStream: streams in both directions, per-stream
// flow control with go/js-style window auto-tuning, keep-alive pings, go-away, RST, limits.
//
// Concurrency model: everything of one session runs on one single-threaded executor. One
// reader coroutine parses frames and dispatches them; one writer coroutine drains an outbound
// frame queue (so frames never interleave, and many small frames leave in one write). Stream
// operations suspend on Events until data, window or queue space is available.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "p2p/libp2p/host/byte_stream.hpp"
#include "p2p/libp2p/host/event.hpp"

namespace kwaai::p2p::libp2p {

struct YamuxConfig {
  std::uint32_t initial_window = 256 * 1024;    // the protocol's fixed starting window
  std::uint32_t max_window = 16 * 1024 * 1024;  // auto-tuning cap (go-libp2p, js)
  std::uint32_t max_send_frame = 256 * 1024;    // DATA payload per frame we send
  std::size_t max_inbound_streams = 1024;       // js allows 1000; headroom for identify etc.
  std::size_t max_outbound_streams = 1024;
  std::size_t max_queued_bytes = 4 * 1024 * 1024;  // writer queue: stream writers wait above it
  std::size_t max_queued_control = 4096;           // pongs/updates/RSTs a peer can make us queue
  std::chrono::milliseconds keepalive_interval{30000};  // 0 = off
  std::chrono::milliseconds ping_timeout{10000};
  std::chrono::milliseconds close_flush_timeout{1000};  // go-away flush on shutdown
};

class YamuxSession;

// A stream's received bytes, as a ring that grows on demand (bounded by the receive window,
// which the session checks before any byte is stored). The session's reader fills it in place
// (prepare, read from the connection, commit): no zero-fill and no staging copy. The
// application reads from the front. Only prepare() moves or reallocates storage, and only the
// reader calls it, so a fill that is waiting on the socket never has its target moved.
class RecvRing {
 public:
  std::size_t size() const { return size_; }
  // Free space for up to `n` bytes at the tail, growing the ring so that `n` bytes fit; the
  // span may be shorter than `n` where the free space wraps around the end.
  std::span<std::uint8_t> prepare(std::size_t n);
  void commit(std::size_t n) { size_ += n; }
  void append(ByteView b);
  // Copies up to out.size() bytes from the front and drops them from the ring.
  std::size_t read(std::span<std::uint8_t> out);

 private:
  void grow(std::size_t need);
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;  // first unread byte
  std::size_t size_ = 0;  // unread bytes, possibly wrapping past cap_
};

class YamuxStream : public std::enable_shared_from_this<YamuxStream> {
 public:
  YamuxStream(std::shared_ptr<YamuxSession> session, std::uint32_t id, bool inbound);
  YamuxStream(const YamuxStream&) = delete;
  YamuxStream& operator=(const YamuxStream&) = delete;

  std::uint32_t id() const { return id_; }
  bool inbound() const { return inbound_; }
  YamuxSession& session() const { return *session_; }

  // At least one byte, or 0 at EOF (the peer sent FIN). kClosed after a reset.
  asio::awaitable<Result<std::size_t>> read_some(std::span<std::uint8_t> buf);
  asio::awaitable<Status> read_exact(std::span<std::uint8_t> buf);
  // Waits for send window and queue space (backpressure); kClosed if reset or write-closed.
  asio::awaitable<Status> write(ByteView data);
  // Half-close: sends FIN. Reading continues until the peer's FIN.
  Status close_write();
  // Aborts both directions (RST). Wakes every waiter on this stream.
  void reset();
  // Bytes the protocol negotiation read past its last line; served before new data and not
  // counted against the flow-control window (they were counted when they arrived).
  void unread(ByteView b);

  bool is_reset() const { return reset_; }
  bool remote_closed() const { return remote_fin_; }
  bool local_closed() const { return local_fin_; }
  std::uint32_t receive_window_size() const { return window_size_; }

 private:
  friend class YamuxSession;
  // Called by the session's reader. admit_data checks a DATA frame's length against the
  // window and takes the credit; on_data does that and stores the payload.
  Status admit_data(std::size_t length);
  Status on_data(ByteView payload);
  void on_window_update(std::uint32_t delta);
  void on_remote_fin();
  void on_remote_reset();
  void maybe_send_window_update();

  std::shared_ptr<YamuxSession> session_;
  std::uint32_t id_;
  bool inbound_;
  Event readable_;
  Event writable_;
  Bytes prefix_;  // unread() bytes
  RecvRing rbuf_;
  std::uint32_t recv_credit_;                    // bytes the peer may still send
  std::uint32_t window_size_;                    // current target window (grows up to max_window)
  std::uint32_t consumed_ = 0;                   // read by the app, not yet returned to the peer
  std::chrono::steady_clock::time_point epoch_;  // last window update we sent
  std::uint64_t send_window_;
  bool remote_fin_ = false;
  bool local_fin_ = false;
  bool reset_ = false;
  bool writing_ = false;  // one writer at a time keeps a stream's bytes in order
};

using YamuxStreamPtr = std::shared_ptr<YamuxStream>;

class YamuxSession : public std::enable_shared_from_this<YamuxSession> {
 public:
  enum class Role { kClient, kServer };  // client = dialer (odd ids), server = listener (even)
  using InboundHandler = std::function<void(YamuxStreamPtr)>;

  static std::shared_ptr<YamuxSession> create(std::unique_ptr<ByteStream> conn, Role role,
                                              YamuxConfig config = {});
  ~YamuxSession();

  // Starts the reader, writer and keep-alive coroutines; `on_inbound` receives each new
  // inbound stream (already ACKed). Call once.
  void start(InboundHandler on_inbound);
  // Called once when the session ends, with the reason.
  void set_on_close(std::function<void(const std::string&)> fn) { on_close_ = std::move(fn); }

  asio::awaitable<Result<YamuxStreamPtr>> open_stream();
  // Round-trip time of one yamux ping, or kTimeout / kClosed.
  asio::awaitable<Result<std::chrono::nanoseconds>> ping(std::chrono::milliseconds timeout);
  // Graceful: go-away (code 0), let the writer flush briefly, then close.
  asio::awaitable<void> shutdown();
  // Immediate close with a logged reason; every stream is reset. Idempotent.
  void close(const std::string& reason);

  bool closed() const { return closed_; }
  const std::string& close_reason() const { return close_reason_; }
  bool remote_went_away() const { return remote_goaway_; }
  std::size_t stream_count() const { return streams_.size(); }
  std::size_t inbound_count() const { return inbound_count_; }
  std::size_t outbound_count() const { return outbound_count_; }
  std::chrono::steady_clock::time_point last_activity() const { return last_activity_; }
  std::chrono::nanoseconds rtt() const { return rtt_; }
  const YamuxConfig& config() const { return config_; }
  asio::any_io_executor executor() const { return executor_; }
  std::string describe() const { return description_; }

 private:
  friend class YamuxStream;
  YamuxSession(std::unique_ptr<ByteStream> conn, Role role, YamuxConfig config);

  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  asio::awaitable<void> keepalive_loop();
  asio::awaitable<void> shutdown_after_error(std::string reason);
  Status handle_frame(std::uint8_t type, std::uint16_t flags, std::uint32_t id,
                      std::uint32_t length, ByteView payload);
  Status handle_stream_flags(std::uint16_t flags, std::uint32_t id, YamuxStreamPtr& stream);
  // FIN/RST of a DATA or WINDOW_UPDATE frame, applied after its payload or delta.
  void finish_stream_flags(std::uint16_t flags, std::uint32_t id, const YamuxStreamPtr& stream);
  // A DATA frame with a payload: read from `reader` straight into the stream's receive ring
  // (into `scratch` and dropped for unknown or closed streams). A failed read closes the
  // session; the Status returned is a protocol error to answer with go-away.
  asio::awaitable<Status> read_data_frame(BufferedReader& reader, std::uint16_t flags,
                                          std::uint32_t id, std::uint32_t length, Bytes& scratch);

  // Queue a frame. Control frames ignore the byte budget but are counted.
  void enqueue(std::uint8_t type, std::uint16_t flags, std::uint32_t id, std::uint32_t length,
               ByteView payload = {});
  bool queue_has_room() const { return out_.size() < config_.max_queued_bytes; }
  void stream_finished(std::uint32_t id);

  asio::any_io_executor executor_;
  std::unique_ptr<ByteStream> conn_;
  Role role_;
  YamuxConfig config_;
  std::string description_;
  InboundHandler on_inbound_;
  std::function<void(const std::string&)> on_close_;

  std::unordered_map<std::uint32_t, YamuxStreamPtr> streams_;
  std::size_t inbound_count_ = 0;
  std::size_t outbound_count_ = 0;
  std::uint32_t next_id_;

  Bytes out_;  // queued frames, not yet handed to the connection
  std::size_t queued_control_ = 0;
  Event queue_nonempty_;
  Event queue_space_;    // below the byte budget again
  Event queue_drained_;  // empty
  asio::steady_timer keepalive_timer_;

  struct PendingPing {
    explicit PendingPing(const asio::any_io_executor& ex) : done(ex) {}
    Event done;
    bool answered = false;
  };
  std::map<std::uint32_t, std::shared_ptr<PendingPing>> pings_;
  std::uint32_t next_ping_ = 1;
  std::chrono::nanoseconds rtt_{0};

  bool started_ = false;
  bool closed_ = false;
  bool goaway_sent_ = false;
  bool remote_goaway_ = false;
  std::string close_reason_;
  std::chrono::steady_clock::time_point last_activity_;
};

}  // namespace kwaai::p2p::libp2p
