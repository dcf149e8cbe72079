// Fuzzes the DHT server path: the first byte picks a message type; the rest is parsed as that
// request and run through rpc_store / rpc_find against a small bounded storage and table.
#include <cstddef>
#include <cstdint>

#include "p2p/hivemind/dht_server.hpp"

using namespace kwaai::p2p::hivemind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  ByteView body(data + 1, size - 1);
  double now = 1700000000.0;
  StorageLimits lim{.max_records = 64,
                    .max_bytes = 1u << 16,
                    .max_bytes_per_origin = 1u << 14,
                    .max_expiration_horizon_s = 3600};
  DHTLocalStorage storage([&] { return now; }, lim), cache([&] { return now; }, lim);
  const DHTID own = DHTID::from_key_str("fuzz-node");
  RoutingTable table(own, {.bucket_size = 4});
  for (int i = 0; i < 8; ++i)
    table.add_or_update(DHTID::from_key_str("n" + std::to_string(i)),
                        to_bytes("p" + std::to_string(i)), now);
  DhtServerContext ctx{own, storage, cache, table, 4};
  switch (data[0] % 4) {
    case 0:
      if (auto req = parse_message<pb::StoreRequest>(body); req.ok()) {
        (void)handle_store(ctx, *req, to_bytes("caller"), now);
        pb::FindRequest find;
        for (const auto& k : req->keys()) *find.add_keys() = k;
        if (auto r = handle_find(ctx, find); r.ok())
          for (const auto& res : r->results()) (void)parse_find_result(res);
      }
      break;
    case 1:
      if (auto req = parse_message<pb::FindRequest>(body); req.ok()) (void)handle_find(ctx, *req);
      break;
    case 2:
      if (auto resp = parse_message<pb::FindResponse>(body); resp.ok())
        for (const auto& r : resp->results()) (void)parse_find_result(r);
      break;
    default:
      if (auto req = parse_message<pb::PingRequest>(body); req.ok())
        (void)DHTID::from_bytes(as_bytes(req->peer().node_id()));
      break;
  }
  return 0;
}
