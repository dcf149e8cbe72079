#include "p2p/libp2p/host/byte_stream.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include "p2p/libp2p/host/asio.hpp"

#include <algorithm>
#include <cstring>

namespace kwaai::p2p::libp2p {

namespace {
std::string endpoint_text(const asio::ip::tcp::endpoint& e) {
  return e.address().to_string() + ":" + std::to_string(e.port());
}
}  // namespace

TcpStream::TcpStream(asio::ip::tcp::socket socket)
    : executor_(socket.get_executor()), socket_(std::move(socket)) {
  boost::system::error_code ec;
  local_ = socket_.local_endpoint(ec);
  remote_ = socket_.remote_endpoint(ec);
  // Small yamux control frames (window updates, pings) must not wait for Nagle.
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  description_ = "tcp " + endpoint_text(remote_);
}

asio::awaitable<Result<std::size_t>> TcpStream::read_some(std::span<std::uint8_t> buf) {
  boost::system::error_code ec;
  std::size_t n = co_await socket_.async_read_some(asio::buffer(buf.data(), buf.size()),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec == asio::error::eof) co_return std::size_t{0};
  if (ec) co_return make_error(Errc::kIo, description_ + ": read: " + ec.message());
  co_return n;
}

asio::awaitable<Status> TcpStream::write(ByteView data) {
  boost::system::error_code ec;
  co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return make_error(Errc::kIo, description_ + ": write: " + ec.message());
  co_return Status{};
}

void TcpStream::close() {
  boost::system::error_code ec;
  if (!socket_.is_open()) return;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

asio::awaitable<Status> BufferedReader::read_exact(std::span<std::uint8_t> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    auto n = co_await read_some(out.subspan(got));
    if (!n) co_return std::move(n).error();
    if (*n == 0)
      co_return make_error(Errc::kClosed, "eof after " + std::to_string(got) + " of " +
                                              std::to_string(out.size()) + " bytes");
    got += *n;
  }
  co_return Status{};
}

asio::awaitable<Result<std::size_t>> BufferedReader::read_some(std::span<std::uint8_t> out) {
  if (out.empty()) co_return std::size_t{0};
  if (pos_ < end_) {
    std::size_t n = std::min(out.size(), end_ - pos_);
    std::memcpy(out.data(), buf_.data() + pos_, n);
    pos_ += n;
    co_return n;
  }
  // Large reads go straight to the caller's buffer; small ones (frame headers) read a chunk
  // ahead so a run of small frames costs one read, not one per header - unless the stream
  // buffers itself, where the chunk would only be a second copy.
  if (out.size() >= kChunk / 4 || stream_->buffers_reads())
    co_return co_await stream_->read_some(out);
  if (buf_.size() < kChunk) buf_.resize(kChunk);
  auto n = co_await stream_->read_some(buf_);
  if (!n || *n == 0) co_return n;
  pos_ = 0;
  end_ = *n;
  co_return co_await read_some(out);
}

void BufferedReader::unread(ByteView b) {
  if (b.empty()) return;
  Bytes merged(b.begin(), b.end());
  merged.insert(merged.end(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_),
                buf_.begin() + static_cast<std::ptrdiff_t>(end_));
  buf_ = std::move(merged);
  pos_ = 0;
  end_ = buf_.size();
}

}  // namespace kwaai::p2p::libp2p
