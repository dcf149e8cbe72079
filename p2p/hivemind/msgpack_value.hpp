// The MessagePack value model hivemind's MSGPackSerializer speaks (hivemind/utils/serializer.py):
// Python's None/bool/int/float/str/bytes/list/dict plus three ext types — tuple (0x40),
// DictionaryDHTValue (0x50) and BatchTensorDescriptor (0x51). Maps keep insertion order because
// the order is part of the bytes (and of RSA signatures over them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/result.hpp"

namespace kwaai::p2p::hivemind {

inline constexpr std::int8_t kExtTuple = 0x40;
inline constexpr std::int8_t kExtDictionaryDHTValue = 0x50;
inline constexpr std::int8_t kExtBatchTensorDescriptor = 0x51;

class Value {
 public:
  enum class Kind : std::uint8_t {
    nil,
    boolean,
    int64,       // any integer in [INT64_MIN, INT64_MAX]
    uint64,      // integers above INT64_MAX (msgpack-python packs them as uint64 0xcf)
    float64,     // Python float; float32 on the wire is widened on decode
    str,         // UTF-8 text (msgpack str)
    bin,         // bytes (msgpack bin)
    array,       // Python list
    map,         // Python dict, insertion ordered
    tuple,       // ext 0x40: payload = msgpack array of the elements
    dictionary,  // ext 0x50: children() = [maxsize, latest_expiration_time, [[subkey, bin, exp]..]]
    tensor_descriptor,  // ext 0x51: children() = [payload map]
    ext,                // any other ext type (only produced by callers; unknown exts decode to bin)
  };
  using Array = std::vector<Value>;
  using Map = std::vector<std::pair<Value, Value>>;

  Value() = default;
  static Value nil() { return Value(); }
  static Value boolean(bool b);
  static Value integer(std::int64_t i);
  static Value uinteger(std::uint64_t u);  // normalised to int64 when it fits
  static Value float64(double d);
  static Value str(std::string s);
  static Value bin(Bytes b);
  static Value array(Array items);
  static Value map(Map entries);
  static Value tuple(Array items);
  // A DictionaryDHTValue ext from its three payload fields (see DictionaryDHTValue below).
  static Value dictionary_payload(Array payload);
  static Value tensor_descriptor(Map fields);
  static Value ext(std::int8_t type, Bytes data);

  Kind kind() const { return kind_; }
  bool is_nil() const { return kind_ == Kind::nil; }
  bool is_int() const { return kind_ == Kind::int64 || kind_ == Kind::uint64; }
  bool is_number() const { return is_int() || kind_ == Kind::float64; }

  bool as_bool() const { return u_.b; }
  std::int64_t as_int() const { return u_.i; }
  std::uint64_t as_uint() const { return u_.u; }
  double as_float() const { return u_.d; }
  // Any number as a double (how Python compares an int with a float expiration).
  double as_double() const;
  const std::string& as_str() const { return text_; }
  const Bytes& as_bin() const { return blob_; }
  std::int8_t ext_type() const { return ext_type_; }
  const Array& items() const { return items_; }  // array, tuple, dictionary, tensor_descriptor
  Array& items() { return items_; }
  const Map& entries() const { return entries_; }  // map
  Map& entries() { return entries_; }
  // Map lookup by string key (first match), nullptr when absent or not a map.
  const Value* find(std::string_view key) const;

  // Structural equality as Python's == sees it for these types (1 == 1.0 is *not* treated as
  // equal here: the encodings differ, and byte-exactness is what callers need). NaN == NaN by
  // bit pattern, so a decoded value compares equal to the one encoded.
  friend bool operator==(const Value& a, const Value& b);

  // Python-ish repr for diagnostics.
  std::string debug_string() const;

 private:
  Kind kind_ = Kind::nil;
  std::int8_t ext_type_ = 0;
  union {
    bool b;
    std::int64_t i;
    std::uint64_t u;
    double d;
  } u_{};
  std::string text_;
  Bytes blob_;
  Array items_;
  Map entries_;
};

// One subkey of a DictionaryDHTValue: the *decoded* subkey object, the value bytes, expiration.
struct DictionaryItem {
  Value subkey;
  Bytes value;
  double expiration_time = 0;
};

// hivemind.dht.storage.DictionaryDHTValue as it travels: msgpack ext 0x50 with payload
// [maxsize, latest_expiration_time, [[subkey, value_bytes, expiration], ...]]. `maxsize` stays a
// Value because hivemind sends float +inf by default but an int when one was given.
struct DictionaryDHTValue {
  Value maxsize = Value::float64(__builtin_inf());
  double latest_expiration_time = -__builtin_inf();
  std::vector<DictionaryItem> items;

  Value to_value() const;
  static Result<DictionaryDHTValue> from_value(const Value& v);
};

}  // namespace kwaai::p2p::hivemind
