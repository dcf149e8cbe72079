#include "engine/llama/weights.hpp"

#include <optional>
#include <stdexcept>
#include <vector>

namespace kwaai::engine::llama {

void expect_shape(const HostTensor& t, const Shape& want) {
  if (t.shape != want)
    throw std::invalid_argument("weight " + t.name + ": shape " + shape_str(t.shape) +
                                ", expected " + shape_str(want));
  if (t.data.size() != dtype_bytes(t.dtype, shape_numel(t.shape)))
    throw std::invalid_argument("weight " + t.name + ": " + std::to_string(t.data.size()) +
                                " bytes for " + std::string(dtype_name(t.dtype)) +
                                shape_str(t.shape));
}

Tensor upload_matrix(Backend& be, const HostTensor& t, Quant quant) {
  if (t.shape.size() != 2)
    throw std::invalid_argument("weight " + t.name + ": expected a matrix, got " +
                                shape_str(t.shape));
  const std::int64_t rows = t.shape[0], cols = t.shape[1];
  Quant want = quant;
  if (want && cols % format_info(*want).block_elems != 0) want.reset();
  if (!want || *want == t.dtype) {
    Tensor dst = be.alloc(t.dtype, t.shape);
    be.upload(dst, t.data);
    return dst;
  }
  // Row by row, so a large matrix never needs a second full f32 copy.
  std::vector<std::byte> out(dtype_bytes(*want, rows * cols));
  std::vector<float> row(static_cast<std::size_t>(cols));
  const std::size_t in_row = dtype_bytes(t.dtype, cols), out_row = dtype_bytes(*want, cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    to_f32(t.dtype, t.data.data() + r * in_row, row.data(), cols);
    from_f32(*want, row.data(), out.data() + r * out_row, cols);
  }
  Tensor dst = be.alloc(*want, t.shape);
  be.upload(dst, out);
  return dst;
}

Tensor upload_f32(Backend& be, const HostTensor& t) {
  const std::int64_t n = shape_numel(t.shape);
  Tensor dst = be.alloc(DType::F32, {n});
  if (t.dtype == DType::F32) {
    be.upload(dst, t.data);
  } else {
    std::vector<float> v(static_cast<std::size_t>(n));
    to_f32(t.dtype, t.data.data(), v.data(), n);
    be.upload(dst, std::as_bytes(std::span(v)));
  }
  return dst;
}

}  // namespace kwaai::engine::llama
