#include "p2p/petals/metadata.hpp"

#include "p2p/hivemind/proto/runtime.pb.h"

#include <charconv>
#include <cmath>

namespace kwaai::p2p::petals {
namespace {

Error bad(const std::string& key, const std::string& why) {
  return make_error(Errc::malformed, "metadata[\"" + key + "\"]: " + why);
}

Result<std::int64_t> as_int(const Value& v, const std::string& key) {
  if (v.kind() != Value::Kind::int64) return bad(key, "expected an int, got " + v.debug_string());
  return v.as_int();
}

Result<std::string> as_str(const Value& v, const std::string& key) {
  if (v.kind() != Value::Kind::str) return bad(key, "expected a str, got " + v.debug_string());
  return v.as_str();
}

Result<NextServer> parse_next_server(const Value& v) {
  if ((v.kind() != Value::Kind::tuple && v.kind() != Value::Kind::array) || v.items().size() != 4)
    return bad("next_servers", "each entry must be (peer_id, session_id, start, end)");
  const auto& it = v.items();
  NextServer s;
  auto peer = as_str(it[0], "next_servers");
  auto sid = as_str(it[1], "next_servers");
  auto start = as_int(it[2], "next_servers");
  auto end = as_int(it[3], "next_servers");
  if (!peer) return peer.error();
  if (!sid) return sid.error();
  if (!start) return start.error();
  if (!end) return end.error();
  if (*start < 0 || *end <= *start) return bad("next_servers", "empty or negative span");
  return NextServer{*peer, *sid, *start, *end};
}

Status apply(RequestMetadata& m, const std::string& key, const Value& v) {
  if (key == "session_id" || key == "step_id") {
    if (v.is_nil()) return Ok{};  // Petals treats None like absent
    auto s = as_str(v, key);
    if (!s) return s.error();
    (key == "session_id" ? m.session_id : m.step_id) = *s;
  } else if (key == "max_length") {
    auto i = as_int(v, key);  // handler.py: assert isinstance(max_length, int)
    if (!i) return i.error();
    m.max_length = *i;
  } else if (key == "points") {
    if (v.kind() == Value::Kind::boolean) {
      m.points = v.as_bool() ? 1 : 0;
    } else if (v.is_number()) {
      m.points = v.as_double();
    } else {
      return bad(key, "must be a number");  // assert isinstance(points, (float, int))
    }
  } else if (key == "active_adapter") {
    if (v.is_nil()) {
      m.active_adapter.reset();
      return Ok{};
    }
    auto s = as_str(v, key);
    if (!s) return s.error();
    m.active_adapter = *s;
  } else if (key == "args_structure") {
    m.args_structure = v;
  } else if (key == "alloc_timeout") {
    if (!v.is_number()) return bad(key, "must be a number");
    const double d = v.as_double();
    if (!(d >= 0) || std::isinf(d)) return bad(key, "must be finite and >= 0");
    m.alloc_timeout = d;
  } else if (key == "start_from_position") {
    if (v.is_nil()) return Ok{};
    auto i = as_int(v, key);
    if (!i) return i.error();
    if (*i < 0) return bad(key, "must be >= 0");
    m.start_from_position = *i;
  } else if (key == "next_servers") {
    if (v.kind() != Value::Kind::array && v.kind() != Value::Kind::tuple)
      return bad(key, "must be a list");
    std::vector<NextServer> out;
    for (const auto& e : v.items()) {
      auto s = parse_next_server(e);
      if (!s) return s.error();
      out.push_back(std::move(*s));
    }
    m.next_servers = std::move(out);
  } else if (key == "pushed") {
    if (v.kind() != Value::Kind::boolean) return bad(key, "must be a bool");
    m.pushed = v.as_bool();
  } else if (key == "output_compression") {
    if (v.kind() != Value::Kind::array && v.kind() != Value::Kind::tuple)
      return bad(key, "must be a list or tuple of ints");
    std::vector<int> out;
    for (const auto& e : v.items()) {
      if (e.kind() != Value::Kind::int64 || e.as_int() < 0 ||
          !hivemind::pb::CompressionType_IsValid(static_cast<int>(e.as_int())))
        return bad(key, "not a CompressionType: " + e.debug_string());
      out.push_back(static_cast<int>(e.as_int()));
    }
    m.output_compression = std::move(out);
  }
  return Ok{};  // other keys are carried along untouched
}

// Is `v` a tensor marker b"__T<digits>"? Returns the index (SIZE_MAX if it does not fit).
std::optional<std::size_t> tensor_marker(const Value& v) {
  if (v.kind() != Value::Kind::bin) return std::nullopt;
  const auto& b = v.as_bin();
  if (b.size() < 3 || b[0] != '_' || b[1] != '_' || b[2] != 'T') return std::nullopt;
  std::size_t idx = 0;
  const char* p = reinterpret_cast<const char*>(b.data()) + 3;
  const char* e = reinterpret_cast<const char*>(b.data()) + b.size();
  auto r = std::from_chars(p, e, idx);
  if (p == e || r.ec != std::errc{} || r.ptr != e) return SIZE_MAX;
  return idx;
}

Status check_markers(const Value& v, std::size_t n_tensors, int depth) {
  if (depth > 32) return bad("args_structure", "nested too deeply");
  if (auto idx = tensor_marker(v)) {
    if (*idx >= n_tensors)
      return bad("args_structure",
                 "tensor marker out of range (" + std::to_string(n_tensors) + " tensors)");
    return Ok{};
  }
  if (v.kind() == Value::Kind::array || v.kind() == Value::Kind::tuple) {
    for (const auto& x : v.items())
      if (auto s = check_markers(x, n_tensors, depth + 1); !s) return s;
  } else if (v.kind() == Value::Kind::map) {
    for (const auto& [k, x] : v.entries())
      if (auto s = check_markers(x, n_tensors, depth + 1); !s) return s;
  }
  return Ok{};
}

}  // namespace

Bytes RequestMetadata::encode() const {
  // Only ext 0x50/0x51 children with the wrong shape can fail; metadata values come from
  // msgpack_decode or the builders here, which never produce those.
  auto r = hivemind::msgpack_encode(Value::map(entries));
  return r ? std::move(*r) : Bytes{};
}

Status RequestMetadata::set(const std::string& key, Value v) {
  if (auto s = apply(*this, key, v); !s) return s;
  for (auto& [k, x] : entries) {
    if (k.kind() == Value::Kind::str && k.as_str() == key) {
      x = std::move(v);
      return Ok{};
    }
  }
  entries.emplace_back(Value::str(key), std::move(v));
  return Ok{};
}

Result<RequestMetadata> metadata_from_value(const Value& v) {
  if (v.kind() != Value::Kind::map) return make_error(Errc::malformed, "metadata is not a map");
  RequestMetadata m;
  for (const auto& [k, x] : v.entries()) {
    if (k.kind() == Value::Kind::str)
      if (auto s = apply(m, k.as_str(), x); !s) return s.error();
  }
  m.entries = v.entries();
  return m;
}

Result<RequestMetadata> parse_request_metadata(ByteView bytes,
                                               const hivemind::MsgpackLimits& limits) {
  if (bytes.empty()) return RequestMetadata{};
  auto v = hivemind::msgpack_decode(bytes, limits);
  if (!v) return v.error();
  return metadata_from_value(*v);
}

Value positional_args_structure(std::size_t n_tensors) {
  Value::Array args;
  for (std::size_t i = 0; i < n_tensors; ++i) {
    const std::string marker = "__T" + std::to_string(i);
    args.push_back(Value::bin(Bytes(marker.begin(), marker.end())));
  }
  return Value::tuple({Value::tuple(std::move(args)), Value::map({})});
}

RequestMetadata client_inference_metadata(const ClientStepMetadata& c) {
  RequestMetadata m;
  (void)m.set("session_id", Value::str(c.session_id));
  (void)m.set("step_id", Value::str(c.step_id));
  if (c.max_length) {
    // First step: {session_id, step_id, max_length, **get_request_metadata(...)}.
    (void)m.set("max_length", Value::integer(*c.max_length));
    (void)m.set("points", Value::float64(0.0));
    (void)m.set("active_adapter", c.active_adapter ? Value::str(*c.active_adapter) : Value::nil());
    (void)m.set("args_structure", positional_args_structure(c.n_tensors));
    (void)m.set("start_from_position", Value::integer(c.start_from_position));
  } else {
    (void)m.set("start_from_position", Value::integer(c.start_from_position));
    (void)m.set("args_structure", positional_args_structure(c.n_tensors));
  }
  return m;
}

RequestMetadata client_forward_metadata(const std::optional<std::string>& active_adapter,
                                        std::size_t n_tensors) {
  RequestMetadata m;
  (void)m.set("points", Value::float64(0.0));
  (void)m.set("active_adapter", active_adapter ? Value::str(*active_adapter) : Value::nil());
  (void)m.set("args_structure", positional_args_structure(n_tensors));
  return m;
}

Result<ArgsLayout> resolve_args_structure(const std::optional<Value>& args_structure,
                                          std::size_t n_tensors) {
  ArgsLayout out;
  if (!args_structure || args_structure->is_nil()) {
    for (std::size_t i = 0; i < n_tensors; ++i) out.args.push_back(i);
    return out;
  }
  const Value& s = *args_structure;
  if ((s.kind() != Value::Kind::tuple && s.kind() != Value::Kind::array) || s.items().size() != 2)
    return bad("args_structure", "must be (args, kwargs)");
  const Value& args = s.items()[0];
  const Value& kwargs = s.items()[1];
  if (args.kind() != Value::Kind::tuple && args.kind() != Value::Kind::array)
    return bad("args_structure", "args must be a tuple");
  if (kwargs.kind() != Value::Kind::map) return bad("args_structure", "kwargs must be a dict");
  if (auto st = check_markers(s, n_tensors, 0); !st) return st.error();
  for (const auto& a : args.items()) {
    auto idx = tensor_marker(a);
    out.args.push_back(idx ? std::optional<std::size_t>(*idx) : std::nullopt);
  }
  return out;
}

}  // namespace kwaai::p2p::petals
