#include "p2p/hivemind/storage.hpp"

#include <algorithm>
#include <cmath>

#include "p2p/hivemind/msgpack_codec.hpp"

namespace kwaai::p2p::hivemind {
namespace {

constexpr std::size_t kRecordOverhead = 64;  // key, expiration and bookkeeping
constexpr std::size_t kSubOverhead = 32;

std::size_t subkey_cost(const Value& subkey, std::size_t value_size) {
  auto packed = msgpack_encode(subkey);
  return kSubOverhead + value_size + (packed ? packed->size() : 0);
}

}  // namespace

bool is_hashable_subkey(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::array:
    case Value::Kind::map:
    case Value::Kind::dictionary:
    case Value::Kind::tensor_descriptor:
      return false;
    case Value::Kind::tuple:
      return std::all_of(v.items().begin(), v.items().end(), is_hashable_subkey);
    default:
      return true;
  }
}

DHTLocalStorage::DHTLocalStorage(DhtClock clock, StorageLimits limits)
    : clock_(std::move(clock)), limits_(limits) {}

bool DHTLocalStorage::admissible(double expiration_time, double now) const {
  if (std::isnan(expiration_time) || expiration_time < now) return false;
  return expiration_time <= now + limits_.max_expiration_horizon_s;
}

bool DHTLocalStorage::reserve(const Bytes& origin, std::size_t cost, bool new_record) {
  auto fits = [&] {
    if (new_record && records_.size() >= limits_.max_records) return false;
    if (bytes_ + cost > limits_.max_bytes) return false;
    if (!origin.empty()) {
      auto it = origin_bytes_.find(to_string(origin));
      std::size_t used = it == origin_bytes_.end() ? 0 : it->second;
      if (used + cost > limits_.max_bytes_per_origin) return false;
    }
    return true;
  };
  if (!fits()) {
    purge_expired();
    if (!fits()) return false;
  }
  bytes_ += cost;
  if (!origin.empty()) origin_bytes_[to_string(origin)] += cost;
  return true;
}

void DHTLocalStorage::release(const Bytes& origin, std::size_t cost) {
  bytes_ -= std::min(bytes_, cost);
  if (origin.empty()) return;
  auto it = origin_bytes_.find(to_string(origin));
  if (it == origin_bytes_.end()) return;
  it->second -= std::min(it->second, cost);
  if (it->second == 0) origin_bytes_.erase(it);
}

void DHTLocalStorage::drop_record(std::unordered_map<DHTID, Record>::iterator it) {
  Record& r = it->second;
  if (r.is_dictionary) {
    for (const auto& s : r.subs) release(s.origin, s.cost);
    release({}, kRecordOverhead);
  } else {
    release(r.origin, r.cost);
  }
  records_.erase(it);
}

void DHTLocalStorage::drop_expired_subs(Record& r, double now) {
  auto dead = [&](const Sub& s) { return s.expiration_time < now; };
  for (const auto& s : r.subs)
    if (dead(s)) release(s.origin, s.cost);
  std::erase_if(r.subs, dead);
}

bool DHTLocalStorage::store(const DHTID& key, ByteView value, double expiration_time,
                            const Bytes& origin) {
  const double now = clock_();
  if (!admissible(expiration_time, now)) return false;
  auto it = records_.find(key);
  if (it != records_.end() && it->second.expiration_time < now) {
    drop_record(it);
    it = records_.end();
  }
  if (it != records_.end() && !(it->second.expiration_time < expiration_time)) return false;
  const std::size_t cost = kRecordOverhead + value.size();
  if (it != records_.end()) {
    // Replace (a dictionary too: a newer regular value wins over it, as in TimedStorage).
    drop_record(it);
  }
  if (!reserve(origin, cost, true)) return false;
  Record r;
  r.value.assign(value.begin(), value.end());
  r.origin = origin;
  r.cost = cost;
  r.expiration_time = expiration_time;
  records_[key] = std::move(r);
  return true;
}

bool DHTLocalStorage::store_subkey(const DHTID& key, const Value& subkey, ByteView value,
                                   double expiration_time, const Bytes& origin) {
  const double now = clock_();
  if (!is_hashable_subkey(subkey)) return false;
  auto it = records_.find(key);
  if (it != records_.end() && it->second.expiration_time < now) {
    drop_record(it);
    it = records_.end();
  }
  if (it == records_.end() || !it->second.is_dictionary) {
    // Nothing, or a regular value: becomes a new one-subkey dictionary if strictly newer.
    if (it != records_.end() && !(expiration_time > it->second.expiration_time)) return false;
    if (!admissible(expiration_time, now)) return false;
    const std::size_t cost = subkey_cost(subkey, value.size());
    if (it != records_.end()) drop_record(it);
    if (!reserve({}, kRecordOverhead, true)) return false;
    if (!reserve(origin, cost, false)) {
      release({}, kRecordOverhead);
      return false;
    }
    Record r;
    r.is_dictionary = true;
    r.expiration_time = r.latest_expiration_time = expiration_time;
    r.subs.push_back({subkey, Bytes(value.begin(), value.end()), expiration_time, origin, cost});
    records_[key] = std::move(r);
    return true;
  }
  Record& r = it->second;
  drop_expired_subs(r, now);
  // hivemind bumps the record's expiration before the subkey store, even if that store fails.
  if (expiration_time > r.latest_expiration_time &&
      expiration_time <= now + limits_.max_expiration_horizon_s) {
    r.expiration_time = std::max(r.expiration_time, expiration_time);
    r.latest_expiration_time = expiration_time;
  }
  if (!admissible(expiration_time, now)) return false;
  auto sub =
      std::find_if(r.subs.begin(), r.subs.end(), [&](const Sub& s) { return s.subkey == subkey; });
  if (sub != r.subs.end() && !(sub->expiration_time < expiration_time)) return false;
  const std::size_t cost = subkey_cost(subkey, value.size());
  if (sub != r.subs.end()) {
    release(sub->origin, sub->cost);
    if (!reserve(origin, cost, false)) {
      r.subs.erase(sub);
      return false;
    }
    // Overwrite in place: Python dict assignment keeps the key's original position.
    sub->value.assign(value.begin(), value.end());
    sub->expiration_time = expiration_time;
    sub->origin = origin;
    sub->cost = cost;
    return true;
  }
  if (!reserve(origin, cost, false)) return false;
  r.subs.push_back({subkey, Bytes(value.begin(), value.end()), expiration_time, origin, cost});
  return true;
}

std::optional<StoredRecord> DHTLocalStorage::get(const DHTID& key) {
  const double now = clock_();
  auto it = records_.find(key);
  if (it == records_.end()) return std::nullopt;
  if (it->second.expiration_time < now) {
    drop_record(it);
    return std::nullopt;
  }
  Record& r = it->second;
  StoredRecord out;
  out.is_dictionary = r.is_dictionary;
  out.expiration_time = r.expiration_time;
  if (!r.is_dictionary) {
    out.value = r.value;
    return out;
  }
  drop_expired_subs(r, now);
  out.dictionary.latest_expiration_time = r.latest_expiration_time;
  for (const auto& s : r.subs)
    out.dictionary.items.push_back({s.subkey, s.value, s.expiration_time});
  return out;
}

void DHTLocalStorage::purge_expired() {
  const double now = clock_();
  for (auto it = records_.begin(); it != records_.end();) {
    auto next = std::next(it);
    if (it->second.expiration_time < now) {
      drop_record(it);
    } else if (it->second.is_dictionary) {
      drop_expired_subs(it->second, now);
    }
    it = next;
  }
}

std::vector<DHTID> DHTLocalStorage::keys() const {
  std::vector<DHTID> out;
  out.reserve(records_.size());
  for (const auto& [k, _] : records_) out.push_back(k);
  return out;
}

std::size_t DHTLocalStorage::bytes_of_origin(const Bytes& origin) const {
  auto it = origin_bytes_.find(to_string(origin));
  return it == origin_bytes_.end() ? 0 : it->second;
}

}  // namespace kwaai::p2p::hivemind
