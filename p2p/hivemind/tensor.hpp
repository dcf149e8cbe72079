// hivemind tensor serialization (hivemind/compression/*, runtime.proto Tensor) on a plain host
// tensor: all six CompressionTypes, hivemind's dtype strings, legacy and raw bfloat16, and the
// split/combine used for streaming RPCs. No engine dependency: callers convert to/from their own
// tensor types through HostTensor's little-endian byte buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/proto/runtime.pb.h"
#include "p2p/hivemind/result.hpp"

namespace kwaai::p2p::hivemind {

enum class DType : std::uint8_t {
  float32,
  float16,
  bfloat16,
  float64,
  int64,
  int32,
  int16,
  int8,
  uint8,
  boolean,
};

// The name hivemind puts in Tensor.dtype ("float32", "bfloat16", "bool", ...).
std::string_view dtype_name(DType t);
std::optional<DType> parse_dtype(std::string_view name);
std::size_t dtype_size(DType t);
bool dtype_is_float(DType t);

struct HostTensor {
  DType dtype = DType::float32;
  std::vector<std::int64_t> shape;  // empty = scalar
  Bytes data;                       // numel * dtype_size bytes, little-endian, C order
  bool requires_grad = false;

  std::size_t numel() const;
  // Convenience constructors/accessors for float32 data (tests, examples).
  static HostTensor from_floats(std::vector<std::int64_t> shape, const std::vector<float>& v);
  std::vector<float> to_floats() const;  // float types only, converted to float32
};

using CompressionType = pb::CompressionType;

struct SerializeOptions {
  // hivemind's default (USE_LEGACY_BFLOAT16 unset): a NONE bfloat16 tensor travels as float32
  // bytes with dtype "bfloat16". Petals sets USE_LEGACY_BFLOAT16=False: raw 2-byte bf16.
  bool legacy_bfloat16 = true;
};

struct DeserializeLimits {
  std::size_t max_elements = std::size_t{1} << 31;  // product of Tensor.size
  std::size_t max_dims = 16;
};

// serialize_torch_tensor(tensor, compression). Fails (Errc::unsupported) where hivemind raises:
// FLOAT16/MEANSTD_16BIT on bfloat16 or integer tensors, 8-bit quantizers on non-float tensors.
Result<pb::Tensor> serialize_tensor(const HostTensor& t, CompressionType compression,
                                    const SerializeOptions& opt = {});
// deserialize_torch_tensor. Validates every length against the declared shape, so a hostile
// Tensor yields an error, never an out-of-bounds read.
Result<HostTensor> deserialize_tensor(const pb::Tensor& t, const DeserializeLimits& limits = {});

// hivemind.utils.streaming: split a serialized Tensor into parts whose buffers hold at most
// `chunk_size_bytes` each. First part: every field + chunks = number of parts (0 for an empty
// buffer, which still yields one part); later parts: buffer only.
std::vector<pb::Tensor> split_for_streaming(const pb::Tensor& t, std::size_t chunk_size_bytes);
// combine_from_streaming: metadata of the first part, buffers concatenated (chunks reset to 0).
Result<pb::Tensor> combine_from_streaming(const std::vector<pb::Tensor>& parts,
                                          std::size_t max_buffer_bytes = std::size_t{1} << 31);

// Groups a flat sequence of parts into tensors the way deserialize_tensor_stream does: a part
// with a non-empty dtype starts a new tensor.
Result<std::vector<pb::Tensor>> group_streamed_parts(const std::vector<pb::Tensor>& parts,
                                                     std::size_t max_buffer_bytes = std::size_t{1}
                                                                                    << 31);

// Scalar conversions with the rounding torch uses (round to nearest even).
std::uint16_t float_to_half(double x);
float half_to_float(std::uint16_t h);
std::uint16_t float_to_bfloat16(float x);
float bfloat16_to_float(std::uint16_t b);

// bitsandbytes create_dynamic_map(signed=True) with entry 0 forced to -1.0 as its CPU kernel does.
const std::vector<float>& blockwise_codebook();

}  // namespace kwaai::p2p::hivemind
