// /ipfs/ping/1.0.0: the dialer writes 32 random bytes, the listener echoes them; repeatable on
// one stream. js-libp2p's connection monitor pings every 10 s and drops peers that stall, so
// the responder must always be registered.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "p2p/libp2p/host/host.hpp"

namespace kwaai::p2p::libp2p {

inline constexpr std::string_view kPingProtocol = "/ipfs/ping/1.0.0";
inline constexpr std::size_t kPingSize = 32;

class PingService : public std::enable_shared_from_this<PingService> {
 public:
  // At most this many concurrent inbound ping streams per peer (spec: two).
  static constexpr int kMaxInboundPerPeer = 2;
  // go's handler: a stream silent this long between pings is reset.
  static constexpr auto kIdleTimeout = std::chrono::seconds(60);

  static std::shared_ptr<PingService> attach(const std::shared_ptr<Host>& host);
  // One round trip on a fresh stream to `peer` (dialing it if needed).
  asio::awaitable<Result<std::chrono::nanoseconds>> ping(const PeerId& peer,
                                                         std::chrono::milliseconds timeout);
  asio::awaitable<Result<std::chrono::nanoseconds>> ping(const ConnectionPtr& conn,
                                                         std::chrono::milliseconds timeout);

 private:
  explicit PingService(std::weak_ptr<Host> host) : host_(std::move(host)) {}
  asio::awaitable<void> serve(YamuxStreamPtr s, ConnectionPtr conn);
  asio::awaitable<Result<std::chrono::nanoseconds>> round_trip(NegotiatedStream ns,
                                                               std::chrono::milliseconds timeout);

  std::weak_ptr<Host> host_;
  std::unordered_map<PeerId, int> inbound_;
};

}  // namespace kwaai::p2p::libp2p
