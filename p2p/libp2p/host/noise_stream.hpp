// A Noise transport channel as a ByteStream, and the connection upgrade that produces one:
// multistream `/noise` over TCP, the XX handshake, then the muxer (early data or mss).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "p2p/libp2p/host/byte_stream.hpp"
#include "p2p/libp2p/host/yamux_session.hpp"
#include "p2p/libp2p/noise.hpp"
#include "p2p/libp2p/peer_id.hpp"

namespace kwaai::p2p::libp2p {

class NoiseStream final : public ByteStream {
 public:
  // `reader` may hold bytes read from `raw` past the handshake; it is kept.
  NoiseStream(std::unique_ptr<ByteStream> raw, std::unique_ptr<BufferedReader> reader,
              noise::NoiseSession session);
  asio::awaitable<Result<std::size_t>> read_some(std::span<std::uint8_t> buf) override;
  asio::awaitable<Status> write(ByteView data) override;
  void close() override { raw_->close(); }
  asio::any_io_executor executor() const override { return raw_->executor(); }
  std::string describe() const override { return "noise/" + raw_->describe(); }
  bool buffers_reads() const override { return true; }

 private:
  // Socket reads land in rx_ and are decrypted from there into the caller's buffer (or in
  // place when the caller's buffer is too small for a frame), so a received byte is copied
  // at most once in user space and nothing is allocated per frame. rx_ starts at one maximal
  // frame (an idle connection of a DHT node should not hold more) and grows once to kRxBuffer
  // when a read fills it: 256 KiB reads keep syscalls per byte low on busy connections.
  static constexpr std::size_t kRxMin = 2 + noise::kMaxFrameLength;
  static constexpr std::size_t kRxBuffer = 256 * 1024;
  // Outgoing data is encrypted into tx_ and written in pieces of this many plaintext bytes,
  // so the buffer stays cache-sized however large the caller's write is.
  static constexpr std::size_t kTxPiece = 256 * 1024;

  // Decrypts the complete frames in rx_ into `buf` while they fit; a frame larger than
  // what is left of `buf` (when nothing was delivered yet) is decrypted in place and its
  // start copied out, the rest left in [plain_, plain_end_). 0: no complete frame.
  Result<std::size_t> take_frames(std::span<std::uint8_t> buf);

  std::unique_ptr<ByteStream> raw_;
  std::unique_ptr<BufferedReader> reader_;
  noise::NoiseSession session_;
  Bytes rx_;
  std::size_t head_ = 0;   // first byte of rx_ not yet decoded (a frame's length prefix)
  std::size_t tail_ = 0;   // end of the bytes received into rx_
  std::size_t plain_ = 0;  // unread plaintext of the last decrypted frame: [plain_, plain_end_)
  std::size_t plain_end_ = 0;
  Bytes tx_;
};

struct UpgradeOptions {
  YamuxConfig yamux;
  bool early_muxer = true;                   // offer /yamux/1.0.0 in the Noise payload
  std::chrono::milliseconds timeout{15000};  // go's inbound upgrade limit
};

struct Upgraded {
  std::shared_ptr<YamuxSession> session;
  PeerId peer;
  PublicKey remote_key;
  bool early_muxer = false;  // muxer came from the Noise extensions, not multistream
};

// Runs the whole upgrade on a fresh TCP connection. The dialer passes the peer id it expects
// (the handshake fails with kPeerIdMismatch on another identity). On timeout the socket is
// closed and kTimeout returned. The session is created but not started.
asio::awaitable<Result<Upgraded>> upgrade_connection(std::unique_ptr<ByteStream> tcp, bool dialer,
                                                     const PrivateKey& identity,
                                                     std::optional<PeerId> expected,
                                                     UpgradeOptions options);

}  // namespace kwaai::p2p::libp2p
