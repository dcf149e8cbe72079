// Device memory: a sub-allocator over large VkDeviceMemory blocks, so tensors do not each take
// a VkDeviceMemory (drivers cap the count, and allocation is slow).
//
// Layout: each block is one VkDeviceMemory with one VkBuffer spanning all of it (usage:
// storage + transfer src/dst). An Allocation is a range [offset, offset+size) of a block's
// buffer, aligned to max(minStorageBufferOffsetAlignment, nonCoherentAtomSize, 16), so any
// allocation can be bound as a storage-buffer descriptor at its own offset. Free ranges sit in
// a per-block free list (first fit, neighbours merged on free). Requests larger than half a
// block get a dedicated block of their own size. Block size is capped by
// maxMemoryAllocationSize and maxBufferSize; a request above those throws OutOfDeviceMemory.
//
// Large tensors: an Allocation may be larger than maxStorageBufferRange (lavapipe: 128 MiB),
// but one descriptor may not cover more than that range. Kernels that walk big tensors are
// dispatched once per window: Context::binding_windows(ref, granule) splits a BufferRef into
// windows each <= maxStorageBufferRange, each starting at an offset aligned to
// minStorageBufferOffsetAlignment and a multiple of `granule` bytes (e.g. a row or a quant
// block) from the start, so each window holds whole rows/blocks; the kernel is told the
// window's element base in its push constants. Stream::dispatch throws std::length_error if
// a single binding exceeds the range, so a forgotten split is an error, not silent garbage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/vk.hpp"

namespace kwaai::runtime {

enum class MemoryUsage {
  DeviceLocal,  // tensors: device-local (may also be host-visible on CPU/UMA devices)
  Upload,       // host-visible + coherent, mapped: staging for uploads
  Readback,     // host-visible (+cached when offered) + coherent, mapped: downloads
};
const char* to_string(MemoryUsage u);

// Non-owning view of a buffer range; what dispatch bindings, copies and downloads take.
struct BufferRef {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize size = 0;
  std::byte* mapped = nullptr;  // host pointer to `offset` when the memory is mapped

  // Sub-range [off, off+bytes) of this range; throws std::out_of_range if it does not fit.
  BufferRef slice(VkDeviceSize off, VkDeviceSize bytes) const;
  explicit operator bool() const { return buffer != VK_NULL_HANDLE; }
};

class Allocator;

// Move-only owner of one range from the Allocator; returns it on destruction. The Context
// (its Allocator) must outlive every Allocation; the caller must not free a range that
// recorded-but-unfinished GPU work still uses (submit_and_wait first).
class Allocation {
 public:
  Allocation() = default;
  Allocation(Allocation&& o) noexcept;
  Allocation& operator=(Allocation&& o) noexcept;
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;
  ~Allocation();

  BufferRef ref() const { return ref_; }
  VkBuffer buffer() const { return ref_.buffer; }
  VkDeviceSize offset() const { return ref_.offset; }
  VkDeviceSize size() const { return ref_.size; }    // the size asked for
  std::byte* mapped() const { return ref_.mapped; }  // null unless host-visible
  MemoryUsage usage() const { return usage_; }
  explicit operator bool() const { return allocator_ != nullptr; }
  void reset();  // free now

 private:
  friend class Allocator;
  Allocator* allocator_ = nullptr;
  std::uint32_t block_ = 0;
  VkDeviceSize reserved_ = 0;  // aligned size taken from the block
  BufferRef ref_;
  MemoryUsage usage_ = MemoryUsage::DeviceLocal;
};

struct MemoryStats {
  std::uint64_t block_count = 0;
  std::uint64_t block_bytes = 0;  // sum of VkDeviceMemory sizes held
  std::uint64_t used_bytes = 0;   // sum of live allocations (aligned)
  std::uint64_t peak_used_bytes = 0;
  std::uint64_t allocation_count = 0;   // live allocations
  std::uint64_t total_allocations = 0;  // ever made
};

struct AllocatorOptions {
  VkDeviceSize block_bytes = 64ull << 20;
  // Cap on block_bytes of all blocks (all usages); 0 = only what the device refuses.
  VkDeviceSize budget_bytes = 0;
};

struct DeviceCaps;

// Thread-safe. Created by Context; exposed for stats and tests.
class Allocator {
 public:
  Allocator(VkDevice device, const DeviceCaps& caps, AllocatorOptions opts);
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Contents undefined. bytes == 0 is rejected (std::invalid_argument).
  Allocation allocate(VkDeviceSize bytes, MemoryUsage usage);
  MemoryStats stats() const;
  VkDeviceSize alignment() const { return alignment_; }
  // Releases blocks with no live allocation (they are otherwise kept for reuse).
  void trim();

 private:
  friend class Allocation;
  struct Block;
  void free(Allocation& a) noexcept;
  std::uint32_t pick_memory_type(MemoryUsage usage, std::uint32_t type_bits) const;
  std::uint32_t new_block(MemoryUsage usage, VkDeviceSize bytes, bool dedicated);

  VkDevice device_;
  const DeviceCaps& caps_;
  AllocatorOptions opts_;
  VkDeviceSize alignment_ = 16;
  VkDeviceSize max_block_ = 0;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Block>> blocks_;  // index = Allocation::block_; null = released
  MemoryStats stats_;
};

}  // namespace kwaai::runtime
