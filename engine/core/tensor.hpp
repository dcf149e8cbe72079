// A typed, shaped view of backend memory. Tensors are always contiguous and row-major
// (last dimension fastest); a view is a byte offset into shared storage, so slicing rows of a
// KV cache costs nothing. Storage is owned by the backend that allocated it and freed when
// the last Tensor referring to it goes away.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/dtype.hpp"

namespace kwaai::engine {

using Shape = std::vector<std::int64_t>;

std::string shape_str(const Shape& s);  // "[2, 3, 5]"
std::int64_t shape_numel(const Shape& s);

// Backend-specific memory (host allocation, Vulkan buffer range, ...).
class Storage {
 public:
  virtual ~Storage() = default;
  virtual std::size_t bytes() const = 0;
};

class Tensor {
 public:
  Tensor() = default;
  // Throws std::invalid_argument if the view does not fit in the storage.
  Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, std::size_t byte_offset = 0);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  std::int64_t dim(int i) const;  // negative i counts from the end
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const;
  std::size_t offset() const { return offset_; }
  Storage* storage() const { return storage_.get(); }
  const std::shared_ptr<Storage>& storage_ptr() const { return storage_; }

  // Rows [begin, end) along dimension 0, sharing storage.
  Tensor slice_rows(std::int64_t begin, std::int64_t end) const;
  // Same bytes, another shape with the same element count.
  Tensor reshaped(Shape shape) const;

  std::string describe() const;  // "f32[2, 3, 5]"

 private:
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::F32;
  Shape shape_;
  std::size_t offset_ = 0;
};

}  // namespace kwaai::engine
