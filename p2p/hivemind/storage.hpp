// DHTLocalStorage (hivemind/dht/storage.py + utils/timed_storage.py) with explicit bounds.
//
// Semantics kept from hivemind: values carry an expiration in DHT time (Unix seconds, float64);
// storing an already-expired value fails; a key is replaced only by a strictly later expiration;
// dictionary values hold subkeys with the same strict rule per subkey, and a subkey store on a
// key holding a regular value with an earlier expiration turns it into a dictionary; expired
// entries vanish on read. Added here (hivemind has none of these): a cap on records, on bytes,
// on the bytes any one origin peer may hold, and on how far in the future an expiration may be.
#pragma once

#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "p2p/hivemind/dht_id.hpp"
#include "p2p/hivemind/msgpack_value.hpp"

namespace kwaai::p2p::hivemind {

using DhtClock = std::function<double()>;  // returns DHT time (Unix seconds)

struct StorageLimits {
  std::size_t max_records = 100'000;
  std::size_t max_bytes = 256u << 20;
  std::size_t max_bytes_per_origin = 16u << 20;   // origin = the storing peer's PeerID bytes
  double max_expiration_horizon_s = 24 * 3600.0;  // reject expiration > now + this
};

struct StoredRecord {
  bool is_dictionary = false;
  Bytes value;                    // regular value bytes
  DictionaryDHTValue dictionary;  // live subkeys in insertion order (dictionary records)
  double expiration_time = 0;
};

class DHTLocalStorage {
 public:
  explicit DHTLocalStorage(DhtClock clock, StorageLimits limits = {});

  // TimedStorage.store: regular value. `origin` empty = local (not counted per peer).
  bool store(const DHTID& key, ByteView value, double expiration_time, const Bytes& origin = {});
  // DHTLocalStorage.store_subkey. `subkey` must be hashable in Python terms (no list/map).
  bool store_subkey(const DHTID& key, const Value& subkey, ByteView value, double expiration_time,
                    const Bytes& origin = {});
  // TimedStorage.get: the record if present and not expired; expired subkeys are dropped.
  std::optional<StoredRecord> get(const DHTID& key);

  // Removes everything expired.
  void purge_expired();
  std::vector<DHTID> keys() const;
  std::size_t size() const { return records_.size(); }
  std::size_t bytes() const { return bytes_; }
  std::size_t bytes_of_origin(const Bytes& origin) const;
  const StorageLimits& limits() const { return limits_; }

 private:
  struct Sub {
    Value subkey;
    Bytes value;
    double expiration_time;
    Bytes origin;
    std::size_t cost;
  };
  struct Record {
    bool is_dictionary = false;
    Bytes value;
    Bytes origin;
    std::size_t cost = 0;  // regular value cost (dictionary: sum of subs + base)
    double expiration_time = 0;
    double latest_expiration_time = 0;  // dictionaries: max subkey expiration ever stored
    std::vector<Sub> subs;
  };

  bool admissible(double expiration_time, double now) const;
  bool reserve(const Bytes& origin, std::size_t cost, bool new_record);
  void release(const Bytes& origin, std::size_t cost);
  void drop_record(std::unordered_map<DHTID, Record>::iterator it);
  void drop_expired_subs(Record& r, double now);

  DhtClock clock_;
  StorageLimits limits_;
  std::unordered_map<DHTID, Record> records_;
  std::unordered_map<std::string, std::size_t> origin_bytes_;
  std::size_t bytes_ = 0;
};

// Python-hashable subkeys only: lists/maps (and containers holding them) crash hivemind's
// rpc_store with TypeError.
bool is_hashable_subkey(const Value& v);

}  // namespace kwaai::p2p::hivemind
