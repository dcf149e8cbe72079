// Helpers for the hivemind vector tests: loading shared/vectors/hivemind/*.json and turning the
// vectors' typed-JSON notation ({"$bytes": hex}, {"$tuple": [...]}, {"$map": [[k, v]...]}, ...)
// into msgpack Values.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/msgpack_value.hpp"

namespace kwaai::p2p::hivemind::testing {

using nlohmann::json;

inline json load_vectors(const std::string& name) {
  std::ifstream in(std::string(KWAAI_SHARED_DIR) + "/vectors/hivemind/" + name);
  if (!in) throw std::runtime_error("cannot open vector file " + name);
  return json::parse(in);
}

inline Bytes hex(const std::string& h) {
  auto r = from_hex(h);
  if (!r) throw std::runtime_error("bad hex in vectors: " + r.error().message);
  return *r;
}

inline double typed_float(const json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.at("$float").get<std::string>();
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  return std::strtod(s.c_str(), nullptr);  // stod rejects subnormals
}

// Converts typed JSON to a Value; Errc::unsupported for inputs our model cannot hold (numpy
// scalars, integers outside [-2^63, 2^64)) — the same inputs hivemind's packer refuses.
inline Result<Value> typed_value(const json& j) {
  if (j.is_null()) return Value::nil();
  if (j.is_boolean()) return Value::boolean(j.get<bool>());
  if (j.is_number_unsigned()) return Value::uinteger(j.get<std::uint64_t>());
  if (j.is_number_integer()) return Value::integer(j.get<std::int64_t>());
  if (j.is_string()) return Value::str(j.get<std::string>());
  if (j.is_array()) {
    Value::Array items;
    for (const auto& x : j) {
      auto v = typed_value(x);
      if (!v) return v;
      items.push_back(std::move(*v));
    }
    return Value::array(std::move(items));
  }
  if (j.contains("$float")) return Value::float64(typed_float(j));
  if (j.contains("$int")) {
    const std::string s = j["$int"].get<std::string>();
    try {
      if (s[0] == '-') {
        std::size_t pos;
        long long v = std::stoll(s, &pos);
        return Value::integer(v);
      }
      return Value::uinteger(std::stoull(s));
    } catch (const std::out_of_range&) {
      return make_error(Errc::unsupported, "integer out of msgpack range: " + s);
    }
  }
  if (j.contains("$bytes")) return Value::bin(hex(j["$bytes"].get<std::string>()));
  if (j.contains("$zero_bytes")) return Value::bin(Bytes(j["$zero_bytes"].get<std::size_t>(), 0));
  if (j.contains("$tuple")) {
    auto inner = typed_value(j["$tuple"]);
    if (!inner) return inner;
    return Value::tuple(std::move(inner->items()));
  }
  if (j.contains("$map")) {
    Value::Map m;
    for (const auto& kv : j["$map"]) {
      auto k = typed_value(kv[0]);
      auto v = typed_value(kv[1]);
      if (!k) return k;
      if (!v) return v;
      m.emplace_back(std::move(*k), std::move(*v));
    }
    return Value::map(std::move(m));
  }
  if (j.contains("$DictionaryDHTValue")) {
    const json& d = j["$DictionaryDHTValue"];
    DictionaryDHTValue dict;
    auto maxsize = typed_value(d["maxsize"]);
    if (!maxsize) return maxsize;
    dict.maxsize = *maxsize;
    dict.latest_expiration_time = typed_float(d["latest_expiration_time"]);
    for (const auto& row : d["items"]) {
      auto sk = typed_value(row[0]);
      if (!sk) return sk;
      dict.items.push_back({*sk, hex(row[1]["$bytes"].get<std::string>()), typed_float(row[2])});
    }
    return dict.to_value();
  }
  if (j.contains("$BatchTensorDescriptor")) {
    const json& d = j["$BatchTensorDescriptor"];
    Value::Map m;
    for (const char* k :
         {"size", "dtype", "layout", "requires_grad", "pin_memory", "compression"}) {
      auto v = typed_value(d.at(k));
      if (!v) return v;
      m.emplace_back(Value::str(k), std::move(*v));
    }
    // hivemind packs the torch device as (device_type, device_index).
    const json& dev = d.at("device");
    m.emplace_back(Value::str("device_type"),
                   dev.is_null() ? Value::nil() : Value::str(dev.get<std::string>()));
    m.emplace_back(Value::str("device_index"), Value::nil());
    return Value::tensor_descriptor(std::move(m));
  }
  if (j.contains("$ext"))
    return Value::ext(static_cast<std::int8_t>(j["$ext"].get<int>()),
                      hex(j["data"].get<std::string>()));
  return make_error(Errc::unsupported, "typed JSON form not representable: " + j.dump());
}

}  // namespace kwaai::p2p::hivemind::testing
