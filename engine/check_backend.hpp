// Check mode for devices that cannot be tested at length (ggml's check-results idea): a Backend
// that runs every op on the device under test and again on a reference backend (the CPU),
// compares each op's outputs, and stops at the first op whose result differs beyond tolerance
// with an error that names the op, its shapes and the worst element. After each op that
// agrees, the reference's outputs are replaced by the device's, so every op is checked on
// exactly the inputs the device saw and errors do not compound.
//
// Turned on for Vulkan backends by KWAAI_VK_CHECK=1 (engine/backend_factory.cpp); the
// tolerance is a relative L2 error per output tensor, KWAAI_VK_CHECK_TOL (default 1e-3; 3e-2
// for products with block-quantized weights, where the CPU multiplies 8-bit activations and a
// GPU f32 ones, so the two compute slightly different functions by design).
#pragma once

#include <memory>

#include "engine/core/backend.hpp"

namespace kwaai::engine {

struct CheckOptions {
  double tolerance = 1e-3;            // relative L2 of an output against the reference
  double quantized_tolerance = 3e-2;  // the same for products with block-quantized weights
};

// `device` is the backend under test, `reference` the one trusted (both owned).
std::unique_ptr<Backend> make_checked_backend(std::unique_ptr<Backend> device,
                                              std::unique_ptr<Backend> reference,
                                              CheckOptions opts = {});

}  // namespace kwaai::engine
