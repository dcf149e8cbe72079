// A calibration result saved per (device, model, quant), for `kwaainet serve` to announce
// without re-measuring — the counterpart of Petals' throughput_v5.json cache entry
// (src/petals/server/throughput.py), one JSON file per key under
// $XDG_CACHE_HOME/kwaainet/calibration/ (or ~/.cache/kwaainet/calibration/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace kwaai::calibration {

struct Profile {
  static constexpr int kVersion = 1;

  // Identity (the key is derived from these three).
  std::string device_name;  // backend description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::string model;        // "llama-2-7b" or the model folder/file name
  std::string quant;        // none | q8_0 | q4_0
  std::string device;       // the spec it was measured with ("cpu", "vulkan:0")

  // Memory and Petals' block count (petals_rules.hpp).
  std::uint64_t memory_bytes = 0;
  std::string memory_source;  // "vulkan device-local heap" | "hwloc RAM"
  double autograd_bytes = 0;
  std::uint64_t block_bytes = 0;
  std::int64_t attn_cache_tokens = 0;
  std::uint64_t cache_bytes_per_block = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_blocks = 0;

  // Throughput (tokens per second per block, as Petals announces them).
  double forward_rps = 0;    // measured
  double inference_rps = 0;  // measured
  double compute_rps = 0;    // = forward_rps: the rate Petals' throughput formula uses
  double network_rps = 0;
  std::string network_source;  // "petals-default-100mbit" | "given"
  bool using_relay = false;
  double throughput = 0;  // announced
  bool quick = false;     // measured with --quick (fewer, shorter steps)
  std::int64_t created_unix = 0;

  std::string key() const;  // "model_<m>_device_<name>_quant_<q>", spaces -> '_'
  nlohmann::json to_json() const;
  // Throws std::invalid_argument naming the first missing / mistyped / out-of-range field.
  static Profile from_json(const nlohmann::json& j);
};

// $XDG_CACHE_HOME/kwaainet/calibration or ~/.cache/kwaainet/calibration; nullopt if neither
// variable is set.
std::optional<std::filesystem::path> default_profile_dir();
// dir / (key with every character outside [A-Za-z0-9._-] replaced by '_') + ".json".
std::filesystem::path profile_path(const std::filesystem::path& dir, const std::string& key);

// Writes atomically (temp file + rename), creating dir. Throws std::runtime_error on I/O errors.
std::filesystem::path save_profile(const std::filesystem::path& dir, const Profile& p);
// The profile for key, or nullopt when absent. A file that is unreadable, not JSON, fails
// validation, or holds another key is ignored with a warning log line (never thrown).
std::optional<Profile> load_profile(const std::filesystem::path& dir, const std::string& key);

}  // namespace kwaai::calibration
