// Shared helpers of the tensor codec files (not part of the public API).
#pragma once

#include <cstring>
#include <vector>

#include "p2p/hivemind/tensor.hpp"

namespace kwaai::p2p::hivemind::detail {

template <class T>
inline T load_le(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // the host is little-endian (x86-64 / aarch64), like hivemind
  return v;
}
template <class T>
inline void append_le(Bytes& out, T v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

// Elements of a float tensor widened to float32 (torch's tensor.to(torch.float32)).
std::vector<float> to_float32(const HostTensor& t);
// Float32 values converted into a tensor of `dtype` (torch's .to(dtype), round to nearest even).
Bytes from_float32(const std::vector<float>& v, DType dtype);

Result<std::size_t> checked_numel(const pb::Tensor& t, const DeserializeLimits& limits);

Result<pb::Tensor> compress_meanstd(const HostTensor& t);
Result<HostTensor> extract_meanstd(const pb::Tensor& t, DType dtype, std::size_t numel);
Result<pb::Tensor> compress_uniform8(const HostTensor& t);
Result<pb::Tensor> compress_quantile8(const HostTensor& t);
Result<HostTensor> extract_codebook8(const pb::Tensor& t, DType dtype, std::size_t numel);
Result<pb::Tensor> compress_blockwise8(const HostTensor& t);
Result<HostTensor> extract_blockwise8(const pb::Tensor& t, DType dtype, std::size_t numel);

}  // namespace kwaai::p2p::hivemind::detail
