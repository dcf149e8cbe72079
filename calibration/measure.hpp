// What calibration measures on a real backend: the device's memory and the per-block compute
// rates, the two inputs of Petals' rules (petals_rules.hpp) that depend on the machine.
#pragma once

#include <cstdint>
#include <string>

#include "engine/core/backend.hpp"
#include "engine/model/host_tensor.hpp"
#include "engine/model/model_source.hpp"

namespace kwaai::calibration {

struct DeviceMemory {
  std::uint64_t bytes = 0;
  std::string source;  // "vulkan device-local heap" | "hwloc RAM"
};

// Petals' G: a GPU's own memory (the largest device-local Vulkan heap — the VRAM; a small
// device-local BAR heap beside it is not extra capacity), or, for the CPU backend and for CPU
// Vulkan devices such as lavapipe whose "device" memory is host memory, the RAM from hwloc
// (as Petals does for MPS with the system RAM).
DeviceMemory device_memory(const engine::Backend& be);

struct ComputeRates {
  double forward_rps = 0;    // tokens/s of one block, forward of n_tokens, no cache
  double inference_rps = 0;  // tokens/s of one block, one token per step, growing cache
  std::int64_t forward_tokens = 0, forward_steps = 0, inference_steps = 0;
  std::uint64_t loaded_block_bytes = 0;  // what the measured block really occupies
};

struct MeasureOptions {
  // Petals' measure_throughput_info: forward 1024 tokens x 10 steps, inference 1 token x 100
  // steps, each after one untimed warm-up step.
  std::int64_t forward_tokens = 1024;
  std::int64_t forward_steps = 10;
  std::int64_t inference_steps = 100;
  static MeasureOptions quick() { return {64, 2, 16}; }
};

// measure_compute_rps (src/petals/server/throughput.py), both modes, on block 0 of src held in
// quant on be: rps = n_steps * n_tokens / elapsed, batch 1, random N(0,1) hidden states.
// Progress goes to the debug log.
ComputeRates measure_compute_rps(engine::Backend& be, const engine::ModelSource& src,
                                 engine::Quant quant, const MeasureOptions& opt);

}  // namespace kwaai::calibration
