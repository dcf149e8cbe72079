#include "engine/model/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace kwaai::engine {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot stat '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("'" + path + "' is not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw std::runtime_error("cannot mmap '" + path + "': " + std::strerror(e));
    }
    // Tensors are read in block order, not sequentially over the whole file: do not let the
    // kernel read ahead into blocks this node does not serve.
    ::madvise(p, size_, MADV_RANDOM);
    data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  release();
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    path_ = std::move(o.path_);
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

namespace {
void advise(std::span<const std::byte> range, int advice) noexcept {
  if (range.empty()) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = reinterpret_cast<std::uintptr_t>(range.data());
  const auto b = first / page * page;
  const auto e = (first + range.size() + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(b), e - b, advice);
}
}  // namespace

void drop_mapped_pages(std::span<const std::byte> range) noexcept {
  // Outward to whole pages: a neighbour's bytes in the edge pages are re-read if it needs them.
  advise(range, MADV_DONTNEED);
}

void prefetch_mapped_pages(std::span<const std::byte> range) noexcept {
  // Sequential: faults in the range read far ahead (the conversion walks rows in order on every
  // thread); WillNeed: start reading now.
  advise(range, MADV_SEQUENTIAL);
  advise(range, MADV_WILLNEED);
}

}  // namespace kwaai::engine
