#include "p2p/petals/server_info.hpp"

#include <cmath>

#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/coerce.hpp"

namespace kwaai::p2p::petals {
namespace {

Error reject(const std::string& field, const std::string& why) {
  return make_error(Errc::rejected, "ServerInfo." + field + ": " + why);
}

// conint(ge=0, strict=True): a real int (bool excluded), not negative.
Result<std::uint64_t> strict_uint(const Value& v, const std::string& field) {
  if (v.kind() == Value::Kind::uint64) return v.as_uint();
  if (v.kind() != Value::Kind::int64) return reject(field, "value is not a valid integer");
  if (v.as_int() < 0) return reject(field, "ensure this value is greater than or equal to 0");
  return static_cast<std::uint64_t>(v.as_int());
}

// confloat(ge=0, strict=True[, allow_inf_nan=False]): a msgpack float (an int is refused).
Result<double> strict_float(const Value& v, const std::string& field, bool finite) {
  if (v.kind() != Value::Kind::float64) return reject(field, "value is not a valid float");
  const double d = v.as_float();
  if (finite && std::isinf(d)) return reject(field, "ensure this value is a finite number");
  if (!(d >= 0))
    return reject(field, "ensure this value is greater than or equal to 0");  // NaN too
  return d;
}

Result<std::optional<std::string>> opt_str(const Value& v, const std::string& field) {
  if (v.is_nil()) return std::optional<std::string>{};
  auto s = coerce_str(v);
  if (!s) return reject(field, "str type expected");
  return std::optional<std::string>(std::move(*s));
}

template <class T>
Value opt(const std::optional<T>& x, Value (*make)(T)) {
  return x ? make(*x) : Value::nil();
}

Result<ServerState> parse_state(const Value& v) {
  // ServerState(x) looks the value up by equality: 2, 2.0 and True (== 1) all match a member.
  double d;
  if (v.kind() == Value::Kind::int64) {
    d = static_cast<double>(v.as_int());
  } else if (v.kind() == Value::Kind::boolean) {
    d = v.as_bool() ? 1 : 0;
  } else if (v.kind() == Value::Kind::float64) {
    d = v.as_float();
  } else {
    return make_error(Errc::rejected, v.debug_string() + " is not a valid ServerState");
  }
  if (d == 0) return ServerState::offline;
  if (d == 1) return ServerState::joining;
  if (d == 2) return ServerState::online;
  return make_error(Errc::rejected, v.debug_string() + " is not a valid ServerState");
}

// pydantic.v1 dict_validator for next_pings: a dict, or anything dict() accepts (a sequence
// of pairs); keys coerced to str (later duplicates overwrite in place, as a Python dict does).
Result<std::vector<std::pair<std::string, double>>> parse_pings(const Value& v) {
  std::vector<std::pair<std::string, double>> out;
  auto put = [&](const Value& key, const Value& val) -> Status {
    if (key.kind() == Value::Kind::array || key.kind() == Value::Kind::map)
      return reject("next_pings", "unhashable key");
    auto k = coerce_str(key);
    if (!k) return reject("next_pings", "str type expected for key");
    auto f = strict_float(val, "next_pings -> " + *k, /*finite=*/false);
    if (!f) return f.error();
    for (auto& [pk, pv] : out) {
      if (pk == *k) {
        pv = *f;
        return Ok{};
      }
    }
    out.emplace_back(std::move(*k), *f);
    return Ok{};
  };
  if (v.kind() == Value::Kind::map) {
    for (const auto& [k, val] : v.entries()) {
      auto s = put(k, val);
      if (!s) return s.error();
    }
    return out;
  }
  if (v.kind() == Value::Kind::array || v.kind() == Value::Kind::tuple) {
    for (const auto& pair : v.items()) {
      if ((pair.kind() != Value::Kind::array && pair.kind() != Value::Kind::tuple) ||
          pair.items().size() != 2)
        return reject("next_pings", "value is not a valid dict");
      auto s = put(pair.items()[0], pair.items()[1]);
      if (!s) return s.error();
    }
    return out;
  }
  return reject("next_pings", "value is not a valid dict");
}

Status apply_field(ServerInfo& info, const std::string& key, const Value& v) {
  auto set_uint = [&](std::optional<std::uint64_t>& dst) -> Status {
    if (v.is_nil()) {
      dst.reset();
      return Ok{};
    }
    auto r = strict_uint(v, key);
    if (!r) return r.error();
    dst = *r;
    return Ok{};
  };
  auto set_rps = [&](std::optional<double>& dst) -> Status {
    if (v.is_nil()) {
      dst.reset();
      return Ok{};
    }
    auto r = strict_float(v, key, /*finite=*/true);
    if (!r) return r.error();
    dst = *r;
    return Ok{};
  };
  auto set_str = [&](std::optional<std::string>& dst) -> Status {
    auto r = opt_str(v, key);
    if (!r) return r.error();
    dst = std::move(*r);
    return Ok{};
  };
  if (key == "start_block") return set_uint(info.start_block);
  if (key == "end_block") return set_uint(info.end_block);
  if (key == "cache_tokens_left") return set_uint(info.cache_tokens_left);
  if (key == "network_rps") return set_rps(info.network_rps);
  if (key == "forward_rps") return set_rps(info.forward_rps);
  if (key == "inference_rps") return set_rps(info.inference_rps);
  if (key == "public_name") return set_str(info.public_name);
  if (key == "version") return set_str(info.version);
  if (key == "torch_dtype") return set_str(info.torch_dtype);
  if (key == "quant_type") return set_str(info.quant_type);
  if (key == "using_relay") {
    if (v.is_nil()) {
      info.using_relay.reset();
      return Ok{};
    }
    auto b = coerce_bool(v);
    if (!b) return reject(key, "value could not be parsed to a boolean");
    info.using_relay = *b;
    return Ok{};
  }
  if (key == "adapters") {
    // Sequence[str]: list or tuple only (str/bytes are not "sequence-like" for pydantic).
    if (v.kind() != Value::Kind::array && v.kind() != Value::Kind::tuple)
      return reject(key, "value is not a valid sequence");
    std::vector<std::string> out;
    for (const auto& item : v.items()) {
      auto s = coerce_str(item);
      if (!s) return reject(key, "str type expected");
      out.push_back(std::move(*s));
    }
    info.adapters = std::move(out);
    info.adapters_as_list = v.kind() == Value::Kind::array;
    return Ok{};
  }
  if (key == "next_pings") {
    if (v.is_nil()) {
      info.next_pings.reset();
      return Ok{};
    }
    auto p = parse_pings(v);
    if (!p) return p.error();
    info.next_pings = std::move(*p);
    return Ok{};
  }
  if (key == "state" || key == "throughput")
    return make_error(Errc::rejected,
                      "ServerInfo() got multiple values for argument '" + key + "'");
  return Ok{};  // pydantic's Extra.ignore: unknown keys are dropped
}

}  // namespace

const char* server_state_name(ServerState s) {
  switch (s) {
    case ServerState::offline:
      return "OFFLINE";
    case ServerState::joining:
      return "JOINING";
    case ServerState::online:
      return "ONLINE";
  }
  return "?";
}

Status ServerInfo::validate() const {
  auto check = [](double d, const char* f, bool finite) -> Status {
    auto r = strict_float(Value::float64(d), f, finite);
    if (!r) return r.error();
    return Ok{};
  };
  if (auto s = check(throughput, "throughput", true); !s) return s;
  for (auto [x, f] :
       {std::pair{&network_rps, "network_rps"}, std::pair{&forward_rps, "forward_rps"},
        std::pair{&inference_rps, "inference_rps"}}) {
    if (*x) {
      if (auto s = check(**x, f, true); !s) return s;
    }
  }
  if (next_pings) {
    for (const auto& [k, d] : *next_pings) {
      if (auto s = check(d, ("next_pings -> " + k).c_str(), false); !s) return s;
    }
  }
  return Ok{};
}

Value ServerInfo::to_value() const {
  Value::Array adapter_items;
  for (const auto& a : adapters) adapter_items.push_back(Value::str(a));
  Value pings = Value::nil();
  if (next_pings) {
    Value::Map m;
    for (const auto& [k, d] : *next_pings) m.emplace_back(Value::str(k), Value::float64(d));
    pings = Value::map(std::move(m));
  }
  Value::Map extra{
      {Value::str("start_block"), opt(start_block, &Value::uinteger)},
      {Value::str("end_block"), opt(end_block, &Value::uinteger)},
      {Value::str("public_name"), opt(public_name, &Value::str)},
      {Value::str("version"), opt(version, &Value::str)},
      {Value::str("network_rps"), opt(network_rps, &Value::float64)},
      {Value::str("forward_rps"), opt(forward_rps, &Value::float64)},
      {Value::str("inference_rps"), opt(inference_rps, &Value::float64)},
      {Value::str("adapters"), adapters_as_list ? Value::array(std::move(adapter_items))
                                                : Value::tuple(std::move(adapter_items))},
      {Value::str("torch_dtype"), opt(torch_dtype, &Value::str)},
      {Value::str("quant_type"), opt(quant_type, &Value::str)},
      {Value::str("using_relay"), opt(using_relay, &Value::boolean)},
      {Value::str("cache_tokens_left"), opt(cache_tokens_left, &Value::uinteger)},
      {Value::str("next_pings"), std::move(pings)},
  };
  return Value::tuple({Value::integer(static_cast<std::int64_t>(state)), Value::float64(throughput),
                       Value::map(std::move(extra))});
}

Bytes ServerInfo::encode() const {
  // Only ext 0x50/0x51 children can make the encoder fail; this value has none.
  return *hivemind::msgpack_encode(to_value());
}

Result<ServerInfo> ServerInfo::from_value(const Value& v) {
  if (v.kind() != Value::Kind::tuple && v.kind() != Value::Kind::array)
    return make_error(Errc::rejected, "ServerInfo source is not a tuple: " + v.debug_string());
  const auto& items = v.items();
  if (items.size() < 2)
    return make_error(Errc::rejected, "not enough values to unpack (expected 2, got " +
                                          std::to_string(items.size()) + ")");
  ServerInfo info;
  auto state = parse_state(items[0]);
  if (!state) return state.error();
  info.state = *state;
  auto tp = strict_float(items[1], "throughput", /*finite=*/true);
  if (!tp) return tp.error();
  info.throughput = *tp;
  if (items.size() > 2) {
    const Value& extra = items[2];
    if (extra.kind() != Value::Kind::map)
      return make_error(Errc::rejected, "ServerInfo() argument after ** must be a mapping");
    // Keyword arguments: a dict's later duplicate wins, so applying in order is equivalent.
    for (const auto& [k, val] : extra.entries()) {
      if (k.kind() != Value::Kind::str)
        return make_error(Errc::rejected, "ServerInfo() keywords must be strings");
    }
    for (const auto& [k, val] : extra.entries()) {
      auto s = apply_field(info, k.as_str(), val);
      if (!s) return s.error();
    }
  }
  return info;
}

Result<ServerInfo> ServerInfo::decode(ByteView bytes) {
  auto v = hivemind::msgpack_decode(bytes);
  if (!v) return v.error();
  return from_value(*v);
}

Value ModelInfo::to_value() const {
  return Value::map({{Value::str("num_blocks"), Value::uinteger(num_blocks)},
                     {Value::str("repository"), opt(repository, &Value::str)}});
}

Bytes ModelInfo::encode() const {
  return *hivemind::msgpack_encode(to_value());
}

Result<ModelInfo> ModelInfo::from_value(const Value& v) {
  if (v.kind() != Value::Kind::map)
    return make_error(Errc::rejected, "ModelInfo source is not a mapping");
  ModelInfo info;
  bool have_blocks = false;
  for (const auto& [k, val] : v.entries()) {
    if (k.kind() != Value::Kind::str)
      return make_error(Errc::rejected, "ModelInfo() keywords must be strings");
    if (k.as_str() == "num_blocks") {
      auto n = strict_uint(val, "num_blocks");
      if (!n) return make_error(Errc::rejected, "ModelInfo.num_blocks: " + n.error().message);
      if (*n < 1)
        return make_error(Errc::rejected,
                          "ModelInfo.num_blocks: ensure this value is greater than or equal to 1");
      info.num_blocks = *n;
      have_blocks = true;
    } else if (k.as_str() == "repository") {
      auto r = opt_str(val, "repository");
      if (!r) return make_error(Errc::rejected, "ModelInfo.repository: str type expected");
      info.repository = std::move(*r);
    }
  }
  if (!have_blocks) return make_error(Errc::rejected, "ModelInfo.num_blocks: field required");
  return info;
}

}  // namespace kwaai::p2p::petals
