#include "p2p/libp2p/protocols/ping.hpp"

#include <sodium.h>

#include <array>

#include "p2p/libp2p/host/event.hpp"

namespace kwaai::p2p::libp2p {

std::shared_ptr<PingService> PingService::attach(const std::shared_ptr<Host>& host) {
  auto svc = std::shared_ptr<PingService>(new PingService(host));
  host->set_handler(std::string(kPingProtocol),
                    [svc](YamuxStreamPtr s, ConnectionPtr c) { return svc->serve(s, c); });
  return svc;
}

asio::awaitable<void> PingService::serve(YamuxStreamPtr s, ConnectionPtr conn) {
  auto self = shared_from_this();
  int& active = inbound_[conn->peer];
  if (active >= kMaxInboundPerPeer) {
    s->reset();
    co_return;
  }
  ++active;
  const PeerId peer = conn->peer;
  std::array<std::uint8_t, kPingSize> buf{};
  for (;;) {
    Watchdog dog(s->session().executor(), kIdleTimeout, [s] { s->reset(); });
    auto n = co_await s->read_some(std::span<std::uint8_t>(buf.data(), 1));
    if (!n || *n == 0) break;
    auto st = co_await s->read_exact(std::span<std::uint8_t>(buf.data() + 1, kPingSize - 1));
    if (!st) break;
    if (!(co_await s->write(buf))) break;
  }
  (void)s->close_write();
  if (--inbound_[peer] <= 0) inbound_.erase(peer);
}

asio::awaitable<Result<std::chrono::nanoseconds>> PingService::round_trip(
    NegotiatedStream ns, std::chrono::milliseconds timeout) {
  auto stream = ns.stream;
  Watchdog dog(stream->session().executor(), timeout, [stream] { stream->reset(); });
  std::array<std::uint8_t, kPingSize> out{}, in{};
  randombytes_buf(out.data(), out.size());
  const auto start = std::chrono::steady_clock::now();
  if (auto st = co_await stream->write(out); !st) co_return std::move(st).error();
  if (auto st = co_await stream->read_exact(in); !st) {
    if (dog.fired()) co_return make_error(Errc::kTimeout, "ping timed out");
    co_return std::move(st).error();
  }
  const auto rtt = std::chrono::steady_clock::now() - start;
  (void)stream->close_write();
  if (in != out) co_return make_error(Errc::kProtocol, "ping echo does not match");
  co_return std::chrono::duration_cast<std::chrono::nanoseconds>(rtt);
}

asio::awaitable<Result<std::chrono::nanoseconds>> PingService::ping(
    const PeerId& peer, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return make_error(Errc::kClosed, "host gone");
  auto c = co_await host->connect(peer);
  if (!c) co_return std::move(c).error();
  co_return co_await ping(*c, timeout);
}

asio::awaitable<Result<std::chrono::nanoseconds>> PingService::ping(
    const ConnectionPtr& conn, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto host = host_.lock();
  if (!host) co_return make_error(Errc::kClosed, "host gone");
  std::vector<std::string> protos{std::string(kPingProtocol)};
  auto ns = co_await host->new_stream(conn, protos);
  if (!ns) co_return std::move(ns).error();
  co_return co_await round_trip(std::move(*ns), timeout);
}

}  // namespace kwaai::p2p::libp2p
