// Encoding goes through msgpack-cxx's packer, whose width choices (smallest int/str/bin/array/
// map/ext header) are the same as msgpack-python's; doubles are written by hand (always 0xcb).
// Decoding uses msgpack-cxx's SAX-style parser with our own visitor so that depth, element count
// and UTF-8 are checked while parsing, before anything large is allocated.
#include <msgpack.hpp>

#include <cstring>
#include <limits>

#include "p2p/hivemind/msgpack_codec.hpp"

namespace kwaai::p2p::hivemind {
namespace {

struct ByteSink {
  Bytes* out;
  void write(const char* p, std::size_t n) {
    out->insert(out->end(), reinterpret_cast<const std::uint8_t*>(p),
                reinterpret_cast<const std::uint8_t*>(p) + n);
  }
};

using Packer = msgpack::packer<ByteSink>;

Status pack(Packer& pk, Bytes& scratch_owner, const Value& v);

Status pack_ext(Packer& pk, std::int8_t type, const Bytes& payload) {
  pk.pack_ext(payload.size(), type);
  pk.pack_ext_body(reinterpret_cast<const char*>(payload.data()), payload.size());
  return Ok{};
}

Status pack(Packer& pk, Bytes& owner, const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::nil:
      pk.pack_nil();
      return Ok{};
    case K::boolean:
      v.as_bool() ? pk.pack_true() : pk.pack_false();
      return Ok{};
    case K::int64:
      pk.pack_int64(v.as_int());
      return Ok{};
    case K::uint64:
      pk.pack_uint64(v.as_uint());
      return Ok{};
    case K::float64: {
      // Written by hand: msgpack-cxx packs integral doubles as ints, msgpack-python never does.
      std::uint64_t bits;
      double d = v.as_float();
      std::memcpy(&bits, &d, sizeof bits);
      owner.push_back(0xcb);
      append_be64(owner, bits);
      return Ok{};
    }
    case K::str:
      pk.pack_str(static_cast<std::uint32_t>(v.as_str().size()));
      pk.pack_str_body(v.as_str().data(), static_cast<std::uint32_t>(v.as_str().size()));
      return Ok{};
    case K::bin:
      pk.pack_bin(static_cast<std::uint32_t>(v.as_bin().size()));
      pk.pack_bin_body(reinterpret_cast<const char*>(v.as_bin().data()),
                       static_cast<std::uint32_t>(v.as_bin().size()));
      return Ok{};
    case K::array:
      pk.pack_array(static_cast<std::uint32_t>(v.items().size()));
      for (const auto& x : v.items())
        if (auto s = pack(pk, owner, x); !s) return s;
      return Ok{};
    case K::map:
      pk.pack_map(static_cast<std::uint32_t>(v.entries().size()));
      for (const auto& [k, x] : v.entries()) {
        if (auto s = pack(pk, owner, k); !s) return s;
        if (auto s = pack(pk, owner, x); !s) return s;
      }
      return Ok{};
    case K::ext:
      return pack_ext(pk, v.ext_type(), v.as_bin());
    case K::tuple:
    case K::dictionary:
    case K::tensor_descriptor: {
      // The payload is itself a complete msgpack document, packed with the same options.
      Value inner;
      if (v.kind() == K::tensor_descriptor) {
        if (v.items().size() != 1 || v.items()[0].kind() != K::map)
          return make_error(Errc::malformed, "BatchTensorDescriptor payload must be one map");
        inner = v.items()[0];
      } else {
        if (v.kind() == K::dictionary && v.items().size() != 3)
          return make_error(Errc::malformed, "DictionaryDHTValue payload must have 3 fields");
        inner = Value::array(v.items());
      }
      auto payload = msgpack_encode(inner);
      if (!payload) return payload.error();
      return pack_ext(pk, v.ext_type(), *payload);
    }
  }
  return make_error(Errc::malformed, "unknown value kind");
}

bool valid_utf8(const char* s, std::size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  std::size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and out-of-range code points are invalid (Python's decoder
    // refuses them too).
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

Result<Value> decode_at_depth(ByteView in, const MsgpackLimits& limits, std::size_t depth,
                              std::size_t& elements);

// Builds a Value tree from msgpack-cxx parser callbacks. Returning false stops the parser; the
// reason is kept in `error`.
class Builder {
 public:
  Builder(const MsgpackLimits& limits, std::size_t base_depth, std::size_t& elements)
      : limits_(limits), base_depth_(base_depth), elements_(elements) {}

  std::optional<Error> error;
  Value root;

  bool visit_nil() { return put(Value::nil()); }
  bool visit_boolean(bool b) { return put(Value::boolean(b)); }
  bool visit_positive_integer(std::uint64_t u) { return put(Value::uinteger(u)); }
  bool visit_negative_integer(std::int64_t i) { return put(Value::integer(i)); }
  bool visit_float32(float f) { return put(Value::float64(static_cast<double>(f))); }
  bool visit_float64(double d) { return put(Value::float64(d)); }
  bool visit_str(const char* p, std::uint32_t n) {
    if (!valid_utf8(p, n)) return fail(Errc::malformed, "str is not valid UTF-8");
    return put(Value::str(std::string(p, n)));
  }
  bool visit_bin(const char* p, std::uint32_t n) {
    return put(Value::bin(Bytes(reinterpret_cast<const std::uint8_t*>(p),
                                reinterpret_cast<const std::uint8_t*>(p) + n)));
  }
  bool visit_ext(const char* p, std::uint32_t n) {
    // p[0] is the ext type, the payload follows.
    auto type = static_cast<std::int8_t>(p[0]);
    ByteView payload(reinterpret_cast<const std::uint8_t*>(p) + 1, n - 1);
    if (type != kExtTuple && type != kExtDictionaryDHTValue && type != kExtBatchTensorDescriptor)
      return put(Value::bin(Bytes(payload.begin(), payload.end())));
    auto inner = decode_at_depth(payload, limits_, base_depth_ + stack_.size() + 1, elements_);
    if (!inner) return fail(inner.error().code, "ext payload: " + inner.error().message);
    Value& x = *inner;
    if (type == kExtTuple) {
      if (x.kind() != Value::Kind::array)
        return fail(Errc::malformed, "tuple ext 0x40 payload is not an array");
      return put(Value::tuple(std::move(x.items())));
    }
    if (type == kExtDictionaryDHTValue) {
      Value d = x.kind() == Value::Kind::array ? Value::dictionary_payload(std::move(x.items()))
                                               : Value();
      if (auto ok = DictionaryDHTValue::from_value(d); !ok)
        return fail(Errc::malformed, ok.error().message);
      return put(std::move(d));
    }
    if (x.kind() != Value::Kind::map)
      return fail(Errc::malformed, "BatchTensorDescriptor ext 0x51 payload is not a map");
    return put(Value::tensor_descriptor(std::move(x.entries())));
  }
  bool start_array(std::uint32_t n) {
    if (!enter()) return false;
    Value a = Value::array({});
    a.items().reserve(std::min<std::size_t>(n, 64));
    return open(std::move(a));
  }
  bool start_array_item() { return true; }
  bool end_array_item() { return true; }
  bool end_array() { return close(); }
  bool start_map(std::uint32_t n) {
    if (!enter()) return false;
    Value m = Value::map({});
    m.entries().reserve(std::min<std::size_t>(n, 64));
    return open(std::move(m));
  }
  bool start_map_key() {
    stack_.back()->entries().emplace_back();
    in_key_ = true;
    return true;
  }
  bool end_map_key() {
    const Value& k = stack_.back()->entries().back().first;
    if (k.kind() != Value::Kind::str && k.kind() != Value::Kind::bin)
      return fail(Errc::unsupported, "map key must be str or bytes (strict_map_key)");
    return true;
  }
  bool start_map_value() {
    in_key_ = false;
    return true;
  }
  bool end_map_value() { return true; }
  bool end_map() { return close(); }
  void parse_error(std::size_t, std::size_t off) {
    if (!error)
      error = Error{Errc::malformed, "invalid msgpack byte at offset " + std::to_string(off)};
  }
  void insufficient_bytes(std::size_t, std::size_t) {
    if (!error) error = Error{Errc::truncated, "msgpack input ends inside an object"};
  }
  bool referenced() const { return false; }
  void set_referenced(bool) {}

 private:
  bool fail(Errc c, std::string m) {
    if (!error) error = Error{c, std::move(m)};
    return false;
  }
  bool count() {
    if (++elements_ > limits_.max_elements)
      return fail(Errc::too_large,
                  "more than " + std::to_string(limits_.max_elements) + " msgpack values");
    return true;
  }
  bool enter() {
    if (base_depth_ + stack_.size() + 1 > limits_.max_depth)
      return fail(Errc::too_large,
                  "msgpack nesting deeper than " + std::to_string(limits_.max_depth));
    return true;
  }
  Value* slot() {
    if (stack_.empty()) return &root;
    Value* top = stack_.back();
    if (top->kind() == Value::Kind::array) {
      top->items().emplace_back();
      return &top->items().back();
    }
    auto& e = top->entries().back();
    return in_key_ ? &e.first : &e.second;
  }
  bool put(Value v) {
    if (!count()) return false;
    *slot() = std::move(v);
    return true;
  }
  bool open(Value container) {
    if (!count()) return false;
    Value* s = slot();
    *s = std::move(container);
    stack_.push_back(s);
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const MsgpackLimits& limits_;
  std::size_t base_depth_;
  std::size_t& elements_;
  std::vector<Value*> stack_;
  bool in_key_ = false;
};

Result<Value> decode_at_depth(ByteView in, const MsgpackLimits& limits, std::size_t depth,
                              std::size_t& elements) {
  if (in.size() > limits.max_input_bytes)
    return make_error(Errc::too_large,
                      "msgpack input of " + std::to_string(in.size()) + " bytes exceeds the limit");
  if (depth > limits.max_depth) return make_error(Errc::too_large, "msgpack nesting too deep");
  if (in.empty()) return make_error(Errc::truncated, "empty msgpack input");
  Builder b(limits, depth, elements);
  std::size_t off = 0;
  bool ok;
  try {
    ok = msgpack::v2::parse(reinterpret_cast<const char*>(in.data()), in.size(), off, b);
  } catch (const std::exception& e) {  // size-limit or allocation failures inside msgpack-cxx
    return make_error(Errc::malformed, std::string("msgpack parser: ") + e.what());
  }
  if (b.error) return *b.error;
  if (!ok) return make_error(Errc::malformed, "msgpack parse failed");
  if (off != in.size())
    return make_error(Errc::malformed, "trailing bytes after the msgpack object (" +
                                           std::to_string(in.size() - off) + " extra)");
  return std::move(b.root);
}

}  // namespace

Result<Bytes> msgpack_encode(const Value& v) {
  Bytes out;
  ByteSink sink{&out};
  Packer pk(sink);
  if (auto s = pack(pk, out, v); !s) return s.error();
  return out;
}

Result<Value> msgpack_decode(ByteView in, const MsgpackLimits& limits) {
  std::size_t elements = 0;
  return decode_at_depth(in, limits, 0, elements);
}

}  // namespace kwaai::p2p::hivemind
