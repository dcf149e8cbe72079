// Read-only memory mapping of a whole file (RAII, move-only).
//
// Model files are mapped rather than read so that loading a span of blocks only faults in the
// pages of the tensors that span needs; the rest of a multi-GB checkpoint is never read.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace kwaai::engine {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws std::runtime_error naming the path and errno text if it cannot be opened/mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
};

}  // namespace kwaai::engine
