// Host-side tensors produced by the model loaders.
//
// A TensorView points into a memory-mapped file (zero copy; valid while its source lives).
// A HostTensor owns its bytes: what you get after a dtype conversion, load-time quantization
// or the GGUF Q/K un-permutation. Both use the backend's host layout (engine/core/dtype.hpp),
// so `Backend::upload(t, host.bytes())` works directly.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "engine/core/dtype.hpp"
#include "engine/core/formats.hpp"
#include "engine/core/tensor.hpp"

namespace kwaai::engine {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::span<const std::byte> data;  // exactly dtype_bytes(dtype, numel) bytes
  std::int64_t numel() const { return shape_numel(shape); }
};

struct HostTensor {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::vector<std::byte> data;
  std::span<const std::byte> bytes() const { return data; }
  std::int64_t numel() const { return shape_numel(shape); }
};

// Converts any float/quantized view to `target` (any format with from_f32) through f32, row by
// row, on up to `threads` threads for a large tensor (0: every hardware thread). Same dtype ->
// a plain copy. Quantized targets need the last dimension to be a whole number of blocks
// (throws std::invalid_argument naming the tensor and shape otherwise).
HostTensor convert_tensor(const TensorView& v, DType target, int threads = 0);

}  // namespace kwaai::engine
