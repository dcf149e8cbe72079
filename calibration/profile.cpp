#include "calibration/profile.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "engine/core/formats.hpp"
#include "runtime/context.hpp"
#include "runtime/replace_file.hpp"

namespace kwaai::calibration {

namespace {

using nlohmann::json;

const json& field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end())
    throw std::invalid_argument(std::string("profile: missing field '") + name + "'");
  return *it;
}

std::string get_string(const json& j, const char* name, bool allow_empty = false) {
  const json& v = field(j, name);
  if (!v.is_string())
    throw std::invalid_argument(std::string("profile: '") + name + "' must be a string");
  std::string s = v.get<std::string>();
  if (!allow_empty && s.empty())
    throw std::invalid_argument(std::string("profile: '") + name + "' is empty");
  return s;
}

// Non-negative integers (sizes, counts); min_value > 0 where zero makes no sense.
std::int64_t get_int(const json& j, const char* name, std::int64_t min_value) {
  const json& v = field(j, name);
  if (!v.is_number_integer())
    throw std::invalid_argument(std::string("profile: '") + name + "' must be an integer");
  // Read as unsigned when nlohmann parsed it so, to catch values above INT64_MAX.
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
    throw std::invalid_argument(std::string("profile: '") + name + "' is too large");
  const std::int64_t x = v.get<std::int64_t>();
  if (x < min_value)
    throw std::invalid_argument(std::string("profile: '") + name + "' = " + std::to_string(x) +
                                " is below " + std::to_string(min_value));
  return x;
}

double get_rate(const json& j, const char* name, bool allow_zero = false) {
  const json& v = field(j, name);
  if (!v.is_number())
    throw std::invalid_argument(std::string("profile: '") + name + "' must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < 0 || (!allow_zero && x == 0))
    throw std::invalid_argument(std::string("profile: '") + name +
                                "' must be a finite positive number");
  return x;
}

bool get_bool(const json& j, const char* name) {
  const json& v = field(j, name);
  if (!v.is_boolean())
    throw std::invalid_argument(std::string("profile: '") + name + "' must be a boolean");
  return v.get<bool>();
}

}  // namespace

std::string Profile::key() const {
  std::string k = "model_" + model + "_device_" + device_name + "_quant_" + quant;
  for (char& c : k)
    if (c == ' ') c = '_';
  return k;
}

json Profile::to_json() const {
  return json{{"version", kVersion},
              {"key", key()},
              {"device", device},
              {"device_name", device_name},
              {"model", model},
              {"quant", quant},
              {"memory_bytes", memory_bytes},
              {"memory_source", memory_source},
              {"autograd_bytes", autograd_bytes},
              {"block_bytes", block_bytes},
              {"attn_cache_tokens", attn_cache_tokens},
              {"cache_bytes_per_block", cache_bytes_per_block},
              {"num_layers", num_layers},
              {"num_blocks", num_blocks},
              {"forward_rps", forward_rps},
              {"inference_rps", inference_rps},
              {"compute_rps", compute_rps},
              {"network_rps", network_rps},
              {"network_source", network_source},
              {"using_relay", using_relay},
              {"throughput", throughput},
              {"quick", quick},
              {"created_unix", created_unix}};
}

Profile Profile::from_json(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("profile: not a JSON object");
  const std::int64_t version = get_int(j, "version", 0);
  if (version != kVersion)
    throw std::invalid_argument("profile: version " + std::to_string(version) + ", expected " +
                                std::to_string(kVersion));
  Profile p;
  p.device = get_string(j, "device");
  p.device_name = get_string(j, "device_name");
  p.model = get_string(j, "model");
  p.quant = get_string(j, "quant");
  try {
    (void)engine::quant_from_name(p.quant);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("profile: ") + e.what());
  }
  p.memory_bytes = static_cast<std::uint64_t>(get_int(j, "memory_bytes", 1));
  p.memory_source = get_string(j, "memory_source");
  p.autograd_bytes = get_rate(j, "autograd_bytes");
  p.block_bytes = static_cast<std::uint64_t>(get_int(j, "block_bytes", 1));
  p.attn_cache_tokens = get_int(j, "attn_cache_tokens", 1);
  p.cache_bytes_per_block = static_cast<std::uint64_t>(get_int(j, "cache_bytes_per_block", 1));
  p.num_layers = get_int(j, "num_layers", 1);
  p.num_blocks = get_int(j, "num_blocks", 1);
  if (p.num_blocks > p.num_layers)
    throw std::invalid_argument("profile: num_blocks " + std::to_string(p.num_blocks) +
                                " exceeds num_layers " + std::to_string(p.num_layers));
  if (p.block_bytes + p.cache_bytes_per_block > p.memory_bytes)
    throw std::invalid_argument("profile: one block does not fit in memory_bytes");
  p.forward_rps = get_rate(j, "forward_rps");
  p.inference_rps = get_rate(j, "inference_rps");
  p.compute_rps = get_rate(j, "compute_rps");
  p.network_rps = get_rate(j, "network_rps");
  p.network_source = get_string(j, "network_source");
  p.using_relay = get_bool(j, "using_relay");
  p.throughput = get_rate(j, "throughput");
  p.quick = get_bool(j, "quick");
  p.created_unix = get_int(j, "created_unix", 0);
  const std::string stored_key = get_string(j, "key");
  if (stored_key != p.key())
    throw std::invalid_argument("profile: key '" + stored_key + "' does not match its fields ('" +
                                p.key() + "')");
  return p;
}

std::optional<std::filesystem::path> default_profile_dir() {
  auto base = runtime::ContextOptions::default_cache_dir();  // .../kwaainet
  if (!base) return std::nullopt;
  return *base / "calibration";
}

std::filesystem::path profile_path(const std::filesystem::path& dir, const std::string& key) {
  std::string name = key;
  for (char& c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    if (!ok) c = '_';
  }
  if (name.empty() || name.front() == '.') name.insert(name.begin(), '_');
  return dir / (name + ".json");
}

std::filesystem::path save_profile(const std::filesystem::path& dir, const Profile& p) {
  const auto path = profile_path(dir, p.key());
  // Two servers starting together may save the same key: replace_file gives each its own
  // temporary.
  try {
    runtime::replace_file(path, p.to_json().dump(2) + "\n");
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("profile: ") + e.what());
  }
  return path;
}

std::optional<Profile> load_profile(const std::filesystem::path& dir, const std::string& key) {
  const auto path = profile_path(dir, key);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  // A profile is a few hundred bytes; anything far larger is not ours.
  constexpr std::uintmax_t kMaxBytes = 1 << 20;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxBytes) {
    spdlog::warn("calibration profile {} ignored: unreadable or larger than 1 MiB", path.string());
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) {
    spdlog::warn("calibration profile {} ignored: read failed", path.string());
    return std::nullopt;
  }
  try {
    const json j = json::parse(ss.str());
    Profile p = Profile::from_json(j);
    if (p.key() != key) throw std::invalid_argument("profile: holds key '" + p.key() + "'");
    return p;
  } catch (const std::exception& e) {
    spdlog::warn("calibration profile {} ignored: {}", path.string(), e.what());
    return std::nullopt;
  }
}

}  // namespace kwaai::calibration
