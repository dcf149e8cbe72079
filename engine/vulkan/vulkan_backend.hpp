// The Vulkan backend: every op is a GLSL compute kernel from kernels/, recorded into one
// command buffer per flush. Its public face carries no Vulkan types.
#pragma once

#include <memory>
#include <string>

#include "engine/core/backend.hpp"

namespace kwaai::engine {

// Throws std::runtime_error (no loader, no device N, device lacks a required feature).
std::unique_ptr<Backend> make_vulkan_backend(int device_index = 0);

}  // namespace kwaai::engine
