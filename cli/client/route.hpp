// Choosing which servers run which blocks, as a pure function of the DHT records (Petals'
// compute_spans + RemoteSequenceManager's min-latency inference route). No IO: the client feeds
// it what it read from the DHT and the peers it has banned after failures.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "p2p/petals/common.hpp"
#include "p2p/petals/dht_records.hpp"
#include "p2p/petals/server_info.hpp"

namespace kwaai::client {

namespace petals = kwaai::p2p::petals;

// A contiguous run of blocks [start, end) one server holds (RemoteSpanInfo).
struct RemoteSpan {
  std::string peer;  // base58
  std::uint32_t start = 0;
  std::uint32_t end = 0;
  petals::ServerInfo info;
  std::uint32_t length() const { return end - start; }
};

// compute_spans: `records[i]` is what the DHT holds for block `first_block + i`. Servers below
// `min_state` are ignored. A record's start_block/end_block, when present, give the span
// (clipped to the requested range); otherwise spans grow over consecutive blocks a peer appears
// in. If one peer shows up with two states, the higher one wins. Result sorted by peer id, then
// start (Petals iterates peers in sorted order).
std::vector<RemoteSpan> compute_spans(const std::vector<petals::BlockRecord>& records,
                                      std::uint32_t first_block, petals::ServerState min_state);

struct RouteOptions {
  // Peers that failed recently. Petals drops them unless that would leave a block with no
  // server at all; then they stay eligible (a retry of the only holder beats giving up).
  std::set<std::string> banned;
  // KV cache the session needs per block (tokens); a server whose cache_tokens_left is smaller
  // gets the same heavy penalty as in Petals (not an exclusion).
  std::optional<std::uint64_t> cache_tokens_needed;
};

// A chain covering [start, end) with the least estimated latency (Petals' "min_latency" graph:
// a client→server hop costs rtt/2 + 18 ms, each block 1/inference_rps seconds (300 s when
// unknown), a server→server hop only where a span ends, +10 s for a server without enough
// cache). RTTs are unknown to us (no pings yet), so every hop counts Petals' default 0.15 s.
// Ties go to fewer hops, then to the lower peer id, so the choice is deterministic.
// Error (Errc::rejected) naming the first uncovered block when no chain exists.
petals::Result<std::vector<RemoteSpan>> make_route(const std::vector<RemoteSpan>& spans,
                                                   std::uint32_t start, std::uint32_t end,
                                                   const RouteOptions& opt = {});

std::string describe_route(const std::vector<RemoteSpan>& route);  // "peer[0:3) -> peer[3:5)"

}  // namespace kwaai::client
