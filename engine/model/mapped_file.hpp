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

// Drops the pages of `range` (part of a read-only file mapping) from this process: they are
// read again from the file if touched later. A span load converts a tensor and then drops its
// bytes, so the checkpoint's pages do not stay in the process's RSS beside the converted copy.
void drop_mapped_pages(std::span<const std::byte> range) noexcept;
// Asks the kernel to read `range` ahead (the mapping is MADV_RANDOM, so a tensor read page by
// page would wait on every 4 KiB fault).
void prefetch_mapped_pages(std::span<const std::byte> range) noexcept;

}  // namespace kwaai::engine
