// The byte-stream seam between layers of a connection: raw TCP, then Noise over it, then
// Yamux over Noise. Everything above the socket is written against this interface so the
// muxer can be tested over plain TCP and reused over any secure channel.
#pragma once

#include "p2p/libp2p/host/asio.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/host/event.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads at least one byte; 0 means the peer closed its side (EOF).
  virtual asio::awaitable<Result<std::size_t>> read_some(std::span<std::uint8_t> buf) = 0;
  // Writes everything or fails; the caller serialises writes (one writer at a time).
  virtual asio::awaitable<Status> write(ByteView data) = 0;
  // Aborts pending operations and releases the socket. Idempotent, callable from timers.
  virtual void close() = 0;
  virtual asio::any_io_executor executor() const = 0;
  // "tcp 127.0.0.1:4001" etc., for logs.
  virtual std::string describe() const = 0;
  // True when small read_some calls are cheap because the stream keeps its own receive
  // buffer (Noise): a BufferedReader on top then reads through instead of staging a copy.
  virtual bool buffers_reads() const { return false; }
};

// A TCP socket as a ByteStream.
class TcpStream final : public ByteStream {
 public:
  explicit TcpStream(asio::ip::tcp::socket socket);
  asio::awaitable<Result<std::size_t>> read_some(std::span<std::uint8_t> buf) override;
  asio::awaitable<Status> write(ByteView data) override;
  void close() override;
  asio::any_io_executor executor() const override { return executor_; }
  std::string describe() const override { return description_; }

  asio::ip::tcp::endpoint local_endpoint() const { return local_; }
  asio::ip::tcp::endpoint remote_endpoint() const { return remote_; }

 private:
  asio::any_io_executor executor_;
  asio::ip::tcp::socket socket_;
  asio::ip::tcp::endpoint local_, remote_;
  std::string description_;
};

// Reads fixed-size pieces from a ByteStream, keeping what it over-read for the next call.
// Also lets protocol negotiation hand back bytes it read past its last line.
class BufferedReader {
 public:
  explicit BufferedReader(ByteStream& s) : stream_(&s) {}
  // Fills `out` completely; kClosed on EOF before that.
  asio::awaitable<Status> read_exact(std::span<std::uint8_t> out);
  // Returns buffered bytes first, else one read_some from the stream.
  asio::awaitable<Result<std::size_t>> read_some(std::span<std::uint8_t> out);
  // Puts bytes back in front of the buffer.
  void unread(ByteView b);
  std::size_t buffered() const { return end_ - pos_; }

 private:
  static constexpr std::size_t kChunk = 64 * 1024;
  ByteStream* stream_;
  Bytes buf_;  // [pos_, end_) is unread; sized once, so refills neither allocate nor zero
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
};

}  // namespace kwaai::p2p::libp2p
