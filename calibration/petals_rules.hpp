// Petals' sizing and throughput rules, reproduced number for number so that a kwaainet node
// announces the same num_blocks / throughput a Python Petals server would on the same device.
// Pure arithmetic (no device access): the measured inputs come from calibration/measure.hpp.
//
// Sources (Petals 2.3, https://github.com/bigscience-workshop/petals):
//   src/petals/server/server.py      Server.__init__ (attn_cache_tokens), _choose_num_blocks
//   src/petals/server/block_utils.py get_block_size, resolve_block_dtype
//   src/petals/server/throughput.py  get_server_throughput, measure_network_rps,
//                                    measure_compute_rps
// See also /work/shared/specs/petals-protocol.md §6.1-6.2 and docs/calibration.md.
#pragma once

#include <cstdint>
#include <string>

#include "engine/core/dtype.hpp"

namespace kwaai::calibration {

// The shape facts the rules read from a Llama config (Petals reads them from block_config).
struct BlockShape {
  std::int64_t hidden = 0;        // hidden_size
  std::int64_t heads = 0;         // num_attention_heads
  std::int64_t kv_heads = 0;      // num_key_value_heads
  std::int64_t layers = 0;        // num_hidden_layers
  std::int64_t block_params = 0;  // sum(p.numel() for p in block.parameters())
  // num_key_value_groups = heads / kv_heads (Petals' WrappedLlamaBlock config).
  std::int64_t kv_groups() const;
};

// The format a block is held in, from a --quant value: "none" is 16-bit (Petals'
// resolve_block_dtype turns "auto" and float32 checkpoints into bfloat16); f32 only when asked
// for; any other weight format of engine/core/formats.hpp by name.
engine::DType weight_format_from_quant(const std::string& quant);

// Bytes per stored value, from the format table. 16/32-bit as torch.finfo(dtype).bits // 8.
// Petals' INT8 (1) and NF4 (4.25/8) do not exist here; a block-quantized format's value bytes
// include its scales (q8_0 34/32, q4_0 18/32) — the same idea as Petals' 4.25 bits for NF4.
double bytes_per_value(engine::DType f);

// get_block_size(config, "memory", ...): round(n_params * bytes_per_value * (1 + 0.01)), with
// Python's round() (half to even).
std::uint64_t block_size_bytes(std::int64_t block_params, engine::DType f);

// Server.__init__: 16384 tokens if num_key_value_groups > 1 ("multi-query"), else 4096.
std::int64_t default_attn_cache_tokens(const BlockShape& s);

// Server.__init__: cache_values_per_block = 2 * hidden_size * attn_cache_tokens;
// cache_values_per_block //= num_key_value_groups; bytes = values * finfo(torch_dtype).bits // 8.
// cache_value_bytes is that dtype's size (2 for the 16-bit dtype Petals serves in).
std::uint64_t cache_bytes_per_block(const BlockShape& s, std::int64_t attn_cache_tokens,
                                    std::uint64_t cache_value_bytes = 2);

// _choose_num_blocks: the rpc_backward reserve, 2 GiB * n_devices / 14336 * hidden_size
// (2 GiB measured for BLOOM-176B, scaled by hidden size). A float, as in Python.
double autograd_reserve_bytes(std::int64_t hidden, int n_devices = 1);

struct BlockBudget {
  std::uint64_t memory_bytes = 0;  // G: the device's total memory
  double autograd_bytes = 0;       // reserve subtracted from G
  std::uint64_t block_bytes = 0;   // get_block_size(..., "memory")
  std::int64_t attn_cache_tokens = 0;
  std::uint64_t cache_bytes_per_block = 0;
  std::int64_t fit_blocks = 0;  // floor((G - autograd) / (block + cache)), before the cap
  std::int64_t num_blocks = 0;  // min(fit_blocks, num_hidden_layers)
};

// _choose_num_blocks. Throws std::runtime_error (with the numbers) when not even one block
// fits — Petals asserts num_blocks >= 1 — and std::invalid_argument for a bad shape.
// attn_cache_tokens <= 0 picks Petals' default.
BlockBudget choose_num_blocks(const BlockShape& s, engine::DType f, std::uint64_t memory_bytes,
                              std::int64_t attn_cache_tokens = 0, int n_devices = 1);

// measure_network_rps: bits_per_request = hidden_size * 16 ("clients usually send 16-bit
// tensors"), rps = min(download, upload) bits/s / bits_per_request.
double network_rps_from_bits_per_second(double bits_per_second, std::int64_t hidden);
// The value Petals falls back to when speedtest fails: default_speed = 100e6 bit/s.
inline constexpr double kPetalsDefaultNetworkBitsPerSecond = 100e6;
// get_server_throughput's relay_penalty.
inline constexpr double kPetalsRelayPenalty = 0.2;

// get_server_throughput: average_blocks_used = (num_blocks + 1) / 2,
// throughput = min(forward_rps / average_blocks_used, network_rps * (0.2 if relay else 1)).
double announced_throughput(double forward_rps, double network_rps, std::int64_t num_blocks,
                            bool using_relay = false);

}  // namespace kwaai::calibration
