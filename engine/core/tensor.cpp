#include "engine/core/tensor.hpp"

#include <stdexcept>
#include <string>

#include "engine/core/formats.hpp"

namespace kwaai::engine {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

namespace {

// Bytes of a tensor of this dtype/shape; rejects negative dims and quantized tensors whose
// rows are not whole blocks (a view must never split a block).
std::size_t checked_bytes(DType dtype, const Shape& shape, const char* op) {
  for (auto d : shape)
    if (d < 0)
      throw std::invalid_argument(std::string(op) + ": negative dimension in " + shape_str(shape));
  if (const std::int64_t be = format_info(dtype).block_elems;
      !shape.empty() && shape.back() % be != 0)
    throw std::invalid_argument(std::string(op) + ": " + std::string(dtype_name(dtype)) +
                                shape_str(shape) + " needs a last dimension multiple of " +
                                std::to_string(be));
  return dtype_bytes(dtype, shape_numel(shape));
}

}  // namespace

Tensor::Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, std::size_t byte_offset)
    : storage_(std::move(storage)), dtype_(dtype), shape_(std::move(shape)), offset_(byte_offset) {
  if (!storage_) throw std::invalid_argument("Tensor: null storage");
  const std::size_t need = checked_bytes(dtype_, shape_, "Tensor");
  const std::size_t have = storage_->bytes();
  if (offset_ > have || need > have - offset_)
    throw std::invalid_argument("Tensor: view " + describe() + " at byte offset " +
                                std::to_string(offset_) + " needs " + std::to_string(need) +
                                " bytes but the storage has " + std::to_string(have));
}

std::int64_t Tensor::dim(int i) const {
  const int r = rank();
  const int j = i < 0 ? i + r : i;
  if (j < 0 || j >= r)
    throw std::out_of_range("Tensor::dim(" + std::to_string(i) + ") on " + describe());
  return shape_[static_cast<std::size_t>(j)];
}

std::size_t Tensor::nbytes() const {
  return dtype_bytes(dtype_, numel());
}

Tensor Tensor::slice_rows(std::int64_t begin, std::int64_t end) const {
  if (rank() == 0) throw std::invalid_argument("slice_rows on a scalar tensor " + describe());
  if (begin < 0 || end < begin || end > shape_[0])
    throw std::out_of_range("slice_rows(" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") out of range for " + describe());
  Shape row_shape(shape_.begin() + 1, shape_.end());
  const std::size_t row_bytes = dtype_bytes(dtype_, shape_numel(row_shape));
  Shape s = shape_;
  s[0] = end - begin;
  return Tensor(storage_, dtype_, std::move(s),
                offset_ + static_cast<std::size_t>(begin) * row_bytes);
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel())
    throw std::invalid_argument("reshaped: " + describe() + " has " + std::to_string(numel()) +
                                " elements, " + shape_str(shape) + " has " +
                                std::to_string(shape_numel(shape)));
  return Tensor(storage_, dtype_, std::move(shape), offset_);
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_);
}

}  // namespace kwaai::engine
