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

asio::awaitable<Result<std::size_t>> NoiseStream::read_some(std::span<std::uint8_t> buf) {
  if (buf.empty()) co_return std::size_t{0};
  while (pos_ == plain_.size()) {
    std::array<std::uint8_t, 2> len_be{};
    // EOF exactly between frames is the peer closing; anywhere inside a frame it is an error.
    auto first = co_await reader_->read_some(std::span<std::uint8_t>(len_be.data(), 1));
    if (!first) co_return std::move(first).error();
    if (*first == 0) co_return std::size_t{0};
    auto st = co_await reader_->read_exact(std::span<std::uint8_t>(len_be.data() + 1, 1));
    if (!st) co_return std::move(st).error();
    const std::size_t len = (std::size_t{len_be[0]} << 8) | len_be[1];
    if (len < noise::kTagLength)
      co_return make_error(Errc::kProtocol, describe() + ": noise frame of " + std::to_string(len) +
                                                " bytes is shorter than a tag");
    frame_.resize(len);
    if (auto rs = co_await reader_->read_exact(frame_); !rs) co_return std::move(rs).error();
    auto plain = session_.decrypt_frame(frame_);
    if (!plain) co_return std::move(plain).error();
    plain_ = std::move(*plain);
    pos_ = 0;
  }
  const std::size_t n = std::min(buf.size(), plain_.size() - pos_);
  std::memcpy(buf.data(), plain_.data() + pos_, n);
  pos_ += n;
  co_return n;
}

asio::awaitable<Status> NoiseStream::write(ByteView data) {
  auto frames = session_.encrypt_frames(data);
  if (!frames) co_return std::move(frames).error();
  co_return co_await raw_->write(*frames);
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
