// Noise transport over a ByteStream and the TCP connection upgrade (spec §5).
#include "p2p/libp2p/host/noise_stream.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

#include "p2p/libp2p/host/negotiate.hpp"
#include "p2p/libp2p/yamux_frame.hpp"

namespace kwaai::p2p::libp2p {

NoiseStream::NoiseStream(std::unique_ptr<ByteStream> raw, std::unique_ptr<BufferedReader> reader,
                         noise::NoiseSession session)
    : raw_(std::move(raw)), reader_(std::move(reader)), session_(std::move(session)) {}

Result<std::size_t> NoiseStream::take_frames(std::span<std::uint8_t> buf) {
  std::size_t done = 0;
  for (;;) {
    const std::size_t avail = tail_ - head_;
    if (avail < 2) break;
    const std::size_t len = (std::size_t{rx_[head_]} << 8) | rx_[head_ + 1];
    if (len < noise::kTagLength)
      return make_error(Errc::kProtocol, describe() + ": noise frame of " + std::to_string(len) +
                                             " bytes is shorter than a tag");
    if (avail < 2 + len) break;
    std::uint8_t* body = rx_.data() + head_ + 2;
    const std::size_t n = len - noise::kTagLength;
    const bool direct = n <= buf.size() - done;
    if (!direct && done > 0) break;  // the caller has bytes; this frame waits for the next call
    // A frame that fits is decrypted into the caller's buffer (the only copy of the bytes in
    // user space); a larger one in place, and served from rx_ over several calls.
    std::uint8_t* out = direct ? buf.data() + done : body;
    if (auto st = session_.decrypt_into(ByteView(body, n), body + n, out); !st)
      return make_error(st.error().code, describe() + ": " + st.error().message);
    head_ += 2 + len;
    if (direct) {
      done += n;
      continue;
    }
    const std::size_t give = buf.size();  // < n here
    std::memcpy(buf.data(), body, give);
    plain_ = static_cast<std::size_t>(body - rx_.data()) + give;
    plain_end_ = plain_ + (n - give);
    return give;
  }
  return done;
}

asio::awaitable<Result<std::size_t>> NoiseStream::read_some(std::span<std::uint8_t> buf) {
  if (buf.empty()) co_return std::size_t{0};
  for (;;) {
    if (plain_ < plain_end_) {
      const std::size_t n = std::min(buf.size(), plain_end_ - plain_);
      std::memcpy(buf.data(), rx_.data() + plain_, n);
      plain_ += n;
      co_return n;
    }
    auto got = take_frames(buf);
    if (!got) co_return std::move(got).error();
    if (*got > 0) co_return *got;
    // No complete frame (or only empty ones): all plaintext is consumed, so the partial frame
    // can move to the front when a maximal frame would no longer fit behind it.
    if (rx_.empty()) rx_.resize(kRxMin);
    if (rx_.size() - head_ < 2 + noise::kMaxFrameLength) {
      std::memmove(rx_.data(), rx_.data() + head_, tail_ - head_);
      tail_ -= head_;
      head_ = plain_ = plain_end_ = 0;
    }
    auto n = co_await reader_->read_some(
        std::span<std::uint8_t>(rx_.data() + tail_, rx_.size() - tail_));
    if (!n) co_return std::move(n).error();
    if (*n == 0) {
      // EOF exactly between frames is the peer closing; anywhere inside a frame it is an error.
      if (tail_ == head_) co_return std::size_t{0};
      co_return make_error(Errc::kClosed, describe() + ": eof inside a noise frame (" +
                                              std::to_string(tail_ - head_) + " bytes of it)");
    }
    tail_ += *n;
    // A read that filled the buffer: the peer is streaming, so read in larger pieces.
    if (tail_ == rx_.size() && rx_.size() < kRxBuffer) rx_.resize(kRxBuffer);
  }
}

asio::awaitable<Status> NoiseStream::write(ByteView data) {
  // Encrypt straight from the caller's bytes into tx_ (no staging copy), one piece at a time.
  do {
    const ByteView piece = data.first(std::min(data.size(), kTxPiece));
    data = data.subspan(piece.size());
    tx_.resize(noise::NoiseSession::framed_size(piece.size()));
    if (auto st = session_.encrypt_frames_into(piece, tx_); !st) co_return st;
    if (auto st = co_await raw_->write(tx_); !st) co_return st;
  } while (!data.empty());
  co_return Status{};
}

namespace {

asio::awaitable<Status> write_noise_message(ByteStream& s, ByteView msg) {
  Bytes framed;
  if (auto st = noise::append_frame(msg, framed); !st) co_return st;
  co_return co_await s.write(framed);
}

asio::awaitable<Result<Bytes>> read_noise_message(BufferedReader& r) {
  std::array<std::uint8_t, 2> len_be{};
  if (auto st = co_await r.read_exact(len_be); !st) co_return std::move(st).error();
  Bytes body((std::size_t{len_be[0]} << 8) | len_be[1]);
  if (auto st = co_await r.read_exact(body); !st) co_return std::move(st).error();
  co_return body;
}

asio::awaitable<Result<Upgraded>> upgrade_steps(std::unique_ptr<ByteStream> tcp, bool dialer,
                                                const PrivateKey& identity,
                                                std::optional<PeerId> expected,
                                                const UpgradeOptions& options) {
  auto reader = std::make_unique<BufferedReader>(*tcp);
  auto unread = [&](ByteView b) { reader->unread(b); };
  // 1. Security protocol. We only speak Noise; a go ≥ v0.33 dialer proposes TLS first and
  //    gets `na` from the responder state machine.
  // (Named vectors, not braced lists: GCC 12 miscompiles initializer lists in co_await args.)
  std::vector<std::string> sec_list{std::string(noise::kProtocolId)};
  std::function<bool(std::string_view)> sec_ok = [](std::string_view p) {
    return p == noise::kProtocolId;
  };
  // (No co_await inside ?: either: GCC 12 destroys the temporaries twice.)
  Result<std::string> sec = make_error(Errc::kState, "unset");
  if (dialer)
    sec = co_await negotiate_outbound(*reader, *tcp, sec_list, unread);
  else
    sec = co_await negotiate_inbound(*reader, *tcp, sec_ok, sec_list, unread);
  if (!sec) co_return make_error(sec.error().code, "security negotiation: " + sec.error().message);

  // 2. Noise XX.
  noise::HandshakeOptions hopts;
  if (!options.early_muxer) hopts.stream_muxers = std::nullopt;
  hopts.expected_peer = expected;
  noise::NoiseHandshake hs(dialer ? noise::Role::kInitiator : noise::Role::kResponder, identity,
                           hopts);
  while (!hs.done()) {
    if (hs.is_my_turn()) {
      auto msg = hs.next_message();
      if (!msg) co_return std::move(msg).error();
      if (auto st = co_await write_noise_message(*tcp, *msg); !st) co_return std::move(st).error();
    } else {
      auto msg = co_await read_noise_message(*reader);
      if (!msg) co_return make_error(msg.error().code, "noise handshake: " + msg.error().message);
      if (auto st = hs.on_message(*msg); !st) co_return std::move(st).error();
    }
  }
  auto res = hs.result();
  if (!res) co_return std::move(res).error();
  auto secure = std::make_unique<NoiseStream>(std::move(tcp), std::move(reader), res->session);

  // 3. Muxer: from the Noise extensions when both sides listed muxers, else multistream
  //    inside the secure channel.
  bool early = false;
  if (res->early_muxer) {
    if (*res->early_muxer != yamux::kProtocolId)
      co_return make_error(Errc::kNegotiationFailed, "early muxer " + *res->early_muxer);
    early = true;
  } else {
    // Bytes left over here would be yamux frames; the NoiseStream cannot take them back, but
    // the multistream reply is the last thing before yamux starts and the initiator waits for
    // it, so a well-behaved peer sends nothing further in the same read.
    Bytes leftover;
    auto keep = [&](ByteView b) { append(leftover, b); };
    std::vector<std::string> mux_list{std::string(yamux::kProtocolId)};
    std::function<bool(std::string_view)> mux_ok = [](std::string_view p) {
      return p == yamux::kProtocolId;
    };
    Result<std::string> mux = make_error(Errc::kState, "unset");
    if (dialer)
      mux = co_await negotiate_outbound(*secure, *secure, mux_list, keep);
    else
      mux = co_await negotiate_inbound(*secure, *secure, mux_ok, mux_list, keep);
    if (!mux) co_return make_error(mux.error().code, "muxer negotiation: " + mux.error().message);
    if (!leftover.empty()) {
      class Prefixed final : public ByteStream {
       public:
        Prefixed(std::unique_ptr<ByteStream> s, Bytes prefix)
            : s_(std::move(s)), prefix_(std::move(prefix)) {}
        asio::awaitable<Result<std::size_t>> read_some(std::span<std::uint8_t> buf) override {
          if (pos_ < prefix_.size()) {
            std::size_t n = std::min(buf.size(), prefix_.size() - pos_);
            std::memcpy(buf.data(), prefix_.data() + pos_, n);
            pos_ += n;
            co_return n;
          }
          co_return co_await s_->read_some(buf);
        }
        asio::awaitable<Status> write(ByteView d) override { co_return co_await s_->write(d); }
        void close() override { s_->close(); }
        asio::any_io_executor executor() const override { return s_->executor(); }
        std::string describe() const override { return s_->describe(); }
        bool buffers_reads() const override { return s_->buffers_reads(); }

       private:
        std::unique_ptr<ByteStream> s_;
        Bytes prefix_;
        std::size_t pos_ = 0;
      };
      auto prefixed = std::make_unique<Prefixed>(std::move(secure), std::move(leftover));
      auto session = YamuxSession::create(
          std::move(prefixed), dialer ? YamuxSession::Role::kClient : YamuxSession::Role::kServer,
          options.yamux);
      co_return Upgraded{session, res->remote_peer, res->remote_key, false};
    }
  }
  auto session = YamuxSession::create(
      std::move(secure), dialer ? YamuxSession::Role::kClient : YamuxSession::Role::kServer,
      options.yamux);
  co_return Upgraded{session, res->remote_peer, res->remote_key, early};
}

}  // namespace

asio::awaitable<Result<Upgraded>> upgrade_connection(std::unique_ptr<ByteStream> tcp, bool dialer,
                                                     const PrivateKey& identity,
                                                     std::optional<PeerId> expected,
                                                     UpgradeOptions options) {
  ByteStream* raw = tcp.get();
  const std::string what = raw->describe();
  // A peer that stops mid-handshake must not hold the socket: close it from a timer.
  Watchdog dog(raw->executor(), options.timeout, [raw] { raw->close(); });
  auto r = co_await upgrade_steps(std::move(tcp), dialer, identity, std::move(expected), options);
  const bool timed_out = dog.fired();
  dog.disarm();
  if (timed_out)
    co_return make_error(Errc::kTimeout, what + ": upgrade did not finish within " +
                                             std::to_string(options.timeout.count()) + " ms");
  if (!r) co_return make_error(r.error().code, what + ": " + r.error().message);
  co_return r;
}

}  // namespace kwaai::p2p::libp2p
