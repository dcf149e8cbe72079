// hivemind BLOCKWISE_8BIT serialization for tensors that live on a compute device. p2p may not
// include engine and engine may not include p2p, so this glue owns the mapping between the
// wire layout (p2p/hivemind/tensor.hpp) and the Backend's quantize/dequantize kernels:
//
//   buffer = int64 A ‖ int64 C ‖ float32 absmax[A] ‖ float32 code[C] ‖ uint8 codes[numel]
//   (little-endian, A = ceil(numel / 4096), C = 256)
//
// Only absmax and the codes cross the device boundary; the values themselves never do.
// Errors are exceptions (std::invalid_argument for a bad message or tensor, std::length_error
// for a size over a limit), each naming what was wrong.
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/core/backend.hpp"
#include "engine/core/tensor.hpp"
#include "p2p/hivemind/proto/runtime.pb.h"

namespace kwaai::glue {

struct Blockwise8Limits {
  // Product of Tensor.size accepted by deserialize (mirrors hivemind::DeserializeLimits).
  std::int64_t max_elements = std::int64_t{1} << 31;
  std::size_t max_dims = 16;
};

// Bound to one backend: the sender's codebook (hivemind::blockwise_codebook()) is uploaded once
// in the constructor and reused by every serialize call. Must not outlive the backend.
class Blockwise8Bridge {
 public:
  explicit Blockwise8Bridge(engine::Backend& backend);

  engine::Backend& backend() const { return *backend_; }

  // x: f32 on this backend, at least one element. dtype_name is what goes into Tensor.dtype:
  // "float32", "bfloat16" or "float16"; hivemind quantizes the float32 upcast of a narrow
  // tensor, so x must already hold that upcast (the values of the bf16/f16 tensor).
  p2p::hivemind::pb::Tensor serialize(const engine::Tensor& x, std::string_view dtype_name,
                                      bool requires_grad) const;

  // Validates the message, uploads codes, absmax and the codebook carried in the buffer, and
  // dequantizes on the device. Returns f32 of shape Tensor.size. For dtype "bfloat16" or
  // "float16" every value is rounded to that type (as hivemind's .to(dtype) does), so the f32
  // result equals the upcast of what hivemind would hand to torch.
  engine::Tensor deserialize(const p2p::hivemind::pb::Tensor& t,
                             const Blockwise8Limits& limits = {}) const;

 private:
  engine::Backend* backend_;
  engine::Tensor codebook_;  // f32[256] on the device
};

// One-shot forms of the above: each call builds a Blockwise8Bridge, so it uploads the codebook
// again. Long-lived callers (a serving loop) should keep a Blockwise8Bridge per backend.
p2p::hivemind::pb::Tensor serialize_blockwise8_on_device(engine::Backend& backend,
                                                         const engine::Tensor& x,
                                                         std::string_view dtype_name,
                                                         bool requires_grad);
engine::Tensor deserialize_blockwise8_to_device(engine::Backend& backend,
                                                const p2p::hivemind::pb::Tensor& t,
                                                const Blockwise8Limits& limits = {});

}  // namespace kwaai::glue
