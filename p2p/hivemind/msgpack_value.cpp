#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "p2p/hivemind/msgpack_value.hpp"

namespace kwaai::p2p::hivemind {

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::boolean;
  v.u_.b = b;
  return v;
}
Value Value::integer(std::int64_t i) {
  Value v;
  v.kind_ = Kind::int64;
  v.u_.i = i;
  return v;
}
Value Value::uinteger(std::uint64_t u) {
  if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return integer(static_cast<std::int64_t>(u));
  Value v;
  v.kind_ = Kind::uint64;
  v.u_.u = u;
  return v;
}
Value Value::float64(double d) {
  Value v;
  v.kind_ = Kind::float64;
  v.u_.d = d;
  return v;
}
Value Value::str(std::string s) {
  Value v;
  v.kind_ = Kind::str;
  v.text_ = std::move(s);
  return v;
}
Value Value::bin(Bytes b) {
  Value v;
  v.kind_ = Kind::bin;
  v.blob_ = std::move(b);
  return v;
}
Value Value::array(Array items) {
  Value v;
  v.kind_ = Kind::array;
  v.items_ = std::move(items);
  return v;
}
Value Value::map(Map entries) {
  Value v;
  v.kind_ = Kind::map;
  v.entries_ = std::move(entries);
  return v;
}
Value Value::tuple(Array items) {
  Value v;
  v.kind_ = Kind::tuple;
  v.ext_type_ = kExtTuple;
  v.items_ = std::move(items);
  return v;
}
Value Value::dictionary_payload(Array payload) {
  Value v;
  v.kind_ = Kind::dictionary;
  v.ext_type_ = kExtDictionaryDHTValue;
  v.items_ = std::move(payload);
  return v;
}
Value Value::tensor_descriptor(Map fields) {
  Value v;
  v.kind_ = Kind::tensor_descriptor;
  v.ext_type_ = kExtBatchTensorDescriptor;
  v.items_.push_back(Value::map(std::move(fields)));
  return v;
}
Value Value::ext(std::int8_t type, Bytes data) {
  Value v;
  v.kind_ = Kind::ext;
  v.ext_type_ = type;
  v.blob_ = std::move(data);
  return v;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::int64:
      return static_cast<double>(u_.i);
    case Kind::uint64:
      return static_cast<double>(u_.u);
    case Kind::float64:
      return u_.d;
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

const Value* Value::find(std::string_view key) const {
  if (kind_ != Kind::map) return nullptr;
  for (const auto& [k, v] : entries_)
    if (k.kind_ == Kind::str && k.text_ == key) return &v;
  return nullptr;
}

bool operator==(const Value& a, const Value& b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::nil:
      return true;
    case Value::Kind::boolean:
      return a.u_.b == b.u_.b;
    case Value::Kind::int64:
      return a.u_.i == b.u_.i;
    case Value::Kind::uint64:
      return a.u_.u == b.u_.u;
    case Value::Kind::float64:
      return std::memcmp(&a.u_.d, &b.u_.d, sizeof(double)) == 0;
    case Value::Kind::str:
      return a.text_ == b.text_;
    case Value::Kind::bin:
      return a.blob_ == b.blob_;
    case Value::Kind::map:
      return a.entries_ == b.entries_;
    case Value::Kind::ext:
      return a.ext_type_ == b.ext_type_ && a.blob_ == b.blob_;
    case Value::Kind::array:
    case Value::Kind::tuple:
    case Value::Kind::dictionary:
    case Value::Kind::tensor_descriptor:
      return a.items_ == b.items_;
  }
  return false;
}

// Appends instead of operator+ chains, which trip GCC 12's -Wrestrict false positive.
static std::string wrap(const char* open, const std::string& body, const char* close) {
  std::string s(open);
  s += body;
  s += close;
  return s;
}

std::string Value::debug_string() const {
  auto join = [](const Array& xs) {
    std::string s;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (i) s += ", ";
      s += xs[i].debug_string();
    }
    return s;
  };
  char buf[64];
  switch (kind_) {
    case Kind::nil:
      return "None";
    case Kind::boolean:
      return u_.b ? "True" : "False";
    case Kind::int64:
      return std::to_string(u_.i);
    case Kind::uint64:
      return std::to_string(u_.u);
    case Kind::float64:
      std::snprintf(buf, sizeof buf, "%.17g", u_.d);
      return buf;
    case Kind::str:
      return wrap("'", text_, "'");
    case Kind::bin:
      return wrap("b'", to_hex(blob_), "'");
    case Kind::array:
      return wrap("[", join(items_), "]");
    case Kind::tuple:
      return wrap("(", join(items_), ")");
    case Kind::dictionary:
      return wrap("DictionaryDHTValue(", join(items_), ")");
    case Kind::tensor_descriptor:
      return wrap("BatchTensorDescriptor(", join(items_), ")");
    case Kind::ext:
      return "ExtType(" + std::to_string(ext_type_) + ", " + to_hex(blob_) + ")";
    case Kind::map: {
      std::string s = "{";
      for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (i) s += ", ";
        s += entries_[i].first.debug_string();
        s += ": ";
        s += entries_[i].second.debug_string();
      }
      s += "}";
      return s;
    }
  }
  return "?";
}

Value DictionaryDHTValue::to_value() const {
  Value::Array rows;
  rows.reserve(items.size());
  for (const auto& it : items)
    rows.push_back(
        Value::array({it.subkey, Value::bin(it.value), Value::float64(it.expiration_time)}));
  return Value::dictionary_payload(
      {maxsize, Value::float64(latest_expiration_time), Value::array(std::move(rows))});
}

Result<DictionaryDHTValue> DictionaryDHTValue::from_value(const Value& v) {
  if (v.kind() != Value::Kind::dictionary)
    return make_error(Errc::malformed, "not a DictionaryDHTValue (ext 0x50)");
  const auto& p = v.items();
  if (p.size() != 3 || !p[0].is_number() || !p[1].is_number() || p[2].kind() != Value::Kind::array)
    return make_error(Errc::malformed,
                      "DictionaryDHTValue payload must be [maxsize, latest_expiration, items]");
  DictionaryDHTValue d;
  d.maxsize = p[0];
  d.latest_expiration_time = p[1].as_double();
  for (const auto& row : p[2].items()) {
    if (row.kind() != Value::Kind::array || row.items().size() != 3 ||
        row.items()[1].kind() != Value::Kind::bin || !row.items()[2].is_number())
      return make_error(Errc::malformed,
                        "DictionaryDHTValue item must be [subkey, value_bytes, expiration]");
    d.items.push_back({row.items()[0], row.items()[1].as_bin(), row.items()[2].as_double()});
  }
  return d;
}

}  // namespace kwaai::p2p::hivemind
