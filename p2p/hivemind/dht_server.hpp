// The server-side decisions of DHTProtocol.rpc_store / rpc_find / rpc_ping as pure functions over
// local storage, cache and routing table. The network layer does the routing-table updates for
// the caller (they need pings) and the validate dial-back; these functions only compute answers.
#pragma once

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/hivemind/routing_table.hpp"
#include "p2p/hivemind/storage.hpp"

namespace kwaai::p2p::hivemind {

struct DhtServerContext {
  DHTID own_id;
  DHTLocalStorage& storage;
  DHTLocalStorage& cache;
  const RoutingTable& table;
  std::size_t bucket_size = 20;  // neighbours per FindResult
};

// rpc_store. `origin` is the authenticated caller PeerID (for per-peer storage quotas). Errors
// mirror the cases where hivemind's handler raises (misaligned lists, undecodable subkeys or
// dictionaries, unhashable subkeys): the caller should answer with unaryResponse.error.
Result<pb::StoreResponse> handle_store(DhtServerContext& ctx, const pb::StoreRequest& req,
                                       const Bytes& origin, double now);
// rpc_find: per key the fresher of storage and cache, plus up to k neighbours excluding the
// requester's node id (id 0 when the requester sent none).
Result<pb::FindResponse> handle_find(DhtServerContext& ctx, const pb::FindRequest& req);
// rpc_ping: own NodeInfo, dht_time, and `available` as decided by the caller's dial-back.
pb::PingResponse handle_ping(const DhtServerContext& ctx, double now, bool available);

}  // namespace kwaai::p2p::hivemind
