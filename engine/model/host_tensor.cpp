#include "engine/model/host_tensor.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "engine/core/formats.hpp"

namespace kwaai::engine {

HostTensor convert_tensor(const TensorView& v, DType target) {
  HostTensor out;
  out.name = v.name;
  out.dtype = target;
  out.shape = v.shape;
  const std::int64_t n = v.numel();
  if (v.data.size() != dtype_bytes(v.dtype, n)) {
    throw std::invalid_argument("convert '" + v.name + "': " + std::to_string(v.data.size()) +
                                " bytes for " + std::string(dtype_name(v.dtype)) +
                                shape_str(v.shape));
  }
  if (v.dtype == target) {
    out.data.assign(v.data.begin(), v.data.end());
    return out;
  }
  auto is_float_like = [](DType t) { return format_info(t).to_f32 != nullptr; };
  if (!is_float_like(v.dtype) || !is_float_like(target)) {
    throw std::invalid_argument("convert '" + v.name + "': cannot convert " +
                                std::string(dtype_name(v.dtype)) + " to " +
                                std::string(dtype_name(target)));
  }
  // Rows along the last dimension: quantized blocks never straddle rows, as in GGUF.
  const std::int64_t row = v.shape.empty() ? 1 : v.shape.back();
  if (row <= 0 || n == 0) {
    out.data.clear();
    return out;
  }
  if (const std::int64_t be = std::max(format_info(target).block_elems,
                                       format_info(v.dtype).block_elems);
      row % be != 0) {
    throw std::invalid_argument("convert '" + v.name + "' " + std::string(dtype_name(v.dtype)) +
                                shape_str(v.shape) + " to " + std::string(dtype_name(target)) +
                                ": the last dimension must be a multiple of " +
                                std::to_string(be));
  }
  const std::int64_t rows = n / row;
  const std::size_t in_row = dtype_bytes(v.dtype, row);
  const std::size_t out_row = dtype_bytes(target, row);
  out.data.resize(out_row * static_cast<std::size_t>(rows));
  std::vector<float> tmp(static_cast<std::size_t>(row));
  for (std::int64_t r = 0; r < rows; ++r) {
    to_f32(v.dtype, v.data.data() + r * in_row, tmp.data(), row);
    from_f32(target, tmp.data(), out.data.data() + r * out_row, row);
  }
  return out;
}

}  // namespace kwaai::engine
