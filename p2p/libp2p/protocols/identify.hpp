// identify (/ipfs/id/1.0.0) and identify-push (/ipfs/id/push/1.0.0).
//
// Responder: one delimited Identify message, then FIN (go reads until EOF and would stall
// 60 s otherwise). Requester: runs on every new connection, reads ≤ 10 messages of ≤ 8 KiB
// until EOF, merges them and records the peer in the host's peer store. Push: sent to every
// connected peer that advertises it when our protocol set changes.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "p2p/libp2p/host/host.hpp"

namespace kwaai::p2p::libp2p {

inline constexpr std::string_view kIdentifyProtocol = "/ipfs/id/1.0.0";
inline constexpr std::string_view kIdentifyPushProtocol = "/ipfs/id/push/1.0.0";

class IdentifyService : public std::enable_shared_from_this<IdentifyService> {
 public:
  using Listener = std::function<void(const ConnectionPtr&, const PeerInfo&)>;

  // Registers both handlers on `host` and a hook that identifies every new connection.
  static std::shared_ptr<IdentifyService> attach(const std::shared_ptr<Host>& host);

  // Asks the peer of `conn` for its identify record, stores and returns it.
  asio::awaitable<Result<PeerInfo>> identify(ConnectionPtr conn);
  // Sends our current record to every connected peer that supports push.
  void push_all();
  // Called after each successful identify / push from a peer.
  void add_listener(Listener fn) { listeners_.push_back(std::move(fn)); }

  // Our Identify message as sent on `conn` (observedAddr = that connection's remote addr).
  Bytes build_message(const Connection& conn) const;
  std::size_t completed() const { return completed_; }

 private:
  explicit IdentifyService(std::weak_ptr<Host> host) : host_(std::move(host)) {}
  asio::awaitable<void> serve(YamuxStreamPtr s, ConnectionPtr conn);
  asio::awaitable<void> serve_push(YamuxStreamPtr s, ConnectionPtr conn);
  // Reads and merges messages until EOF into `info`.
  asio::awaitable<Status> read_messages(YamuxStream& s, const Connection& conn, PeerInfo& info,
                                        bool partial);
  void notify(const ConnectionPtr& conn, const PeerInfo& info);

  std::weak_ptr<Host> host_;
  std::vector<Listener> listeners_;
  std::size_t completed_ = 0;
};

}  // namespace kwaai::p2p::libp2p
