// `kwaainet calibrate` without the CLI: pick the model shape, read the device memory, apply
// Petals' block-count rule, measure one block's compute rates, take the network estimate, and
// combine them into the announced throughput (a Profile, see profile.hpp).
#pragma once

#include <cstdint>
#include <string>

#include "calibration/profile.hpp"
#include "engine/core/backend.hpp"
#include "engine/model/model_source.hpp"

namespace kwaai::calibration {

struct CalibrateOptions {
  std::string model;      // HF folder or .gguf (one of model / synthetic)
  std::string synthetic;  // llama-3-8b | llama-2-7b | llama-3-70b | stories260k
  std::string device = "cpu";
  std::string quant = "none";  // none | q8_0 | q4_0
  bool quick = false;          // MeasureOptions::quick() instead of Petals' step counts
  // Overrides num_hidden_layers (the cap on num_blocks) for a synthetic model; 0 = the real one.
  std::int64_t layers = 0;
  // Link speed in bit/s (min of up and down) measured elsewhere; 0 = Petals' 100 Mbit/s default.
  double network_bits_per_second = 0;
  bool using_relay = false;
  // Overrides the memory Petals' rule divides (bytes); 0 = the device's own (measure.hpp).
  std::uint64_t memory_bytes = 0;
};

// Throws std::invalid_argument for bad options, std::runtime_error when no block fits or the
// device/model cannot be opened.
Profile calibrate(const CalibrateOptions& opt);

// The same for a real model already open on a backend (what `kwaainet serve` has at hand):
// block 0 of `src` is measured on `be`; opt.model names the profile, opt.synthetic, .device and
// .layers are not used.
Profile calibrate(const CalibrateOptions& opt, engine::Backend& be, const engine::ModelSource& src);

// The model part of a profile key for a real checkpoint: its folder name, or a .gguf's stem.
std::string model_label(const std::string& path);

}  // namespace kwaai::calibration
