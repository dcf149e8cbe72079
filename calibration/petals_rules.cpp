#include "calibration/petals_rules.hpp"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/core/formats.hpp"

namespace kwaai::calibration {

std::int64_t BlockShape::kv_groups() const {
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("calibration: heads " + std::to_string(heads) +
                                " must be a positive multiple of kv_heads " +
                                std::to_string(kv_heads));
  return heads / kv_heads;
}

engine::DType weight_format_from_quant(const std::string& q) {
  if (q == "none" || q == "f16" || q == "bf16") return engine::DType::F16;
  if (const engine::FormatInfo* f = engine::find_format(q); f && f->weight) return f->dtype;
  throw std::invalid_argument("calibration: unknown quant '" + q + "' (expected none, " +
                              engine::format_names(engine::is_weight_format) + ")");
}

double bytes_per_value(engine::DType f) {
  return engine::format_info(f).bytes_per_value();
}

std::uint64_t block_size_bytes(std::int64_t block_params, engine::DType f) {
  if (block_params <= 0)
    throw std::invalid_argument("calibration: block_params must be > 0, got " +
                                std::to_string(block_params));
  constexpr double kEps = 0.01;  // get_block_size(..., eps=0.01)
  const double bytes = static_cast<double>(block_params) * bytes_per_value(f) * (1 + kEps);
  // Python's round() rounds halves to even, which is nearbyint under FE_TONEAREST.
  const int old_mode = std::fegetround();
  std::fesetround(FE_TONEAREST);
  const double r = std::nearbyint(bytes);
  std::fesetround(old_mode);
  return static_cast<std::uint64_t>(r);
}

std::int64_t default_attn_cache_tokens(const BlockShape& s) {
  return s.kv_groups() > 1 ? 16384 : 4096;
}

std::uint64_t cache_bytes_per_block(const BlockShape& s, std::int64_t attn_cache_tokens,
                                    std::uint64_t cache_value_bytes) {
  if (s.hidden <= 0 || attn_cache_tokens <= 0 || cache_value_bytes == 0)
    throw std::invalid_argument("calibration: cache size needs hidden > 0 and tokens > 0");
  std::uint64_t values =
      2ull * static_cast<std::uint64_t>(s.hidden) * static_cast<std::uint64_t>(attn_cache_tokens);
  values /= static_cast<std::uint64_t>(s.kv_groups());  // floor division, as //=
  return values * cache_value_bytes;
}

double autograd_reserve_bytes(std::int64_t hidden, int n_devices) {
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  // Python evaluates left to right: ((2 * gib * n) / 14336) * hidden.
  return 2 * kGiB * n_devices / 14336 * static_cast<double>(hidden);
}

BlockBudget choose_num_blocks(const BlockShape& s, engine::DType f, std::uint64_t memory_bytes,
                              std::int64_t attn_cache_tokens, int n_devices) {
  if (s.layers <= 0) throw std::invalid_argument("calibration: num_hidden_layers must be > 0");
  BlockBudget b;
  b.memory_bytes = memory_bytes;
  b.autograd_bytes = autograd_reserve_bytes(s.hidden, n_devices);
  b.block_bytes = block_size_bytes(s.block_params, f);
  b.attn_cache_tokens = attn_cache_tokens > 0 ? attn_cache_tokens : default_attn_cache_tokens(s);
  b.cache_bytes_per_block = cache_bytes_per_block(s, b.attn_cache_tokens);
  const double per_block = static_cast<double>(b.block_bytes + b.cache_bytes_per_block);
  b.fit_blocks = static_cast<std::int64_t>(
      std::floor((static_cast<double>(memory_bytes) - b.autograd_bytes) / per_block));
  if (b.fit_blocks < 1)
    throw std::runtime_error(
        "calibration: the device does not have enough memory to serve at least one block (" +
        std::to_string(memory_bytes) + " bytes, minus " +
        std::to_string(static_cast<std::uint64_t>(b.autograd_bytes)) +
        " reserved for autograd, per block " + std::to_string(b.block_bytes) + " + cache " +
        std::to_string(b.cache_bytes_per_block) + ")");
  b.num_blocks = std::min(b.fit_blocks, s.layers);
  return b;
}

double network_rps_from_bits_per_second(double bits_per_second, std::int64_t hidden) {
  if (hidden <= 0 || !(bits_per_second > 0))
    throw std::invalid_argument("calibration: network rps needs hidden > 0 and a bit rate > 0");
  const double bits_per_request = static_cast<double>(hidden) * 16;
  return bits_per_second / bits_per_request;
}

double announced_throughput(double forward_rps, double network_rps, std::int64_t num_blocks,
                            bool using_relay) {
  if (num_blocks < 1) throw std::invalid_argument("calibration: num_blocks must be >= 1");
  const double average_blocks_used = (static_cast<double>(num_blocks) + 1) / 2;
  const double compute = forward_rps / average_blocks_used;
  const double network = network_rps * (using_relay ? kPetalsRelayPenalty : 1.0);
  return std::min(compute, network);
}

}  // namespace kwaai::calibration
