#include "runtime/memory.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

#include "runtime/device_caps.hpp"
#include "runtime/error.hpp"

namespace kwaai::runtime {

const char* to_string(MemoryUsage u) {
  switch (u) {
    case MemoryUsage::DeviceLocal:
      return "device-local";
    case MemoryUsage::Upload:
      return "upload";
    case MemoryUsage::Readback:
      return "readback";
  }
  return "?";
}

BufferRef BufferRef::slice(VkDeviceSize off, VkDeviceSize bytes) const {
  if (off > size || bytes > size - off)
    throw std::out_of_range("BufferRef::slice: [" + std::to_string(off) + ", +" +
                            std::to_string(bytes) + ") outside a range of " + std::to_string(size) +
                            " bytes");
  return {buffer, offset + off, bytes, mapped ? mapped + off : nullptr};
}

// ---------------------------------------------------------------- Allocation

Allocation::Allocation(Allocation&& o) noexcept {
  *this = std::move(o);
}

Allocation& Allocation::operator=(Allocation&& o) noexcept {
  if (this != &o) {
    reset();
    allocator_ = o.allocator_;
    block_ = o.block_;
    reserved_ = o.reserved_;
    ref_ = o.ref_;
    usage_ = o.usage_;
    o.allocator_ = nullptr;
    o.ref_ = {};
  }
  return *this;
}

Allocation::~Allocation() {
  reset();
}

void Allocation::reset() {
  if (allocator_) allocator_->free(*this);
  allocator_ = nullptr;
  ref_ = {};
}

// ---------------------------------------------------------------- Allocator

struct Allocator::Block {
  VkDevice device = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize size = 0;
  std::byte* mapped = nullptr;
  MemoryUsage usage = MemoryUsage::DeviceLocal;
  bool dedicated = false;
  std::uint32_t live = 0;
  std::map<VkDeviceSize, VkDeviceSize> free;  // offset -> size, non-adjacent

  ~Block() {
    if (mapped) vkUnmapMemory(device, memory);
    if (buffer) vkDestroyBuffer(device, buffer, nullptr);
    if (memory) vkFreeMemory(device, memory, nullptr);
  }

  // First fit; returns the offset or ~0.
  VkDeviceSize take(VkDeviceSize bytes) {
    for (auto it = free.begin(); it != free.end(); ++it) {
      if (it->second < bytes) continue;
      const VkDeviceSize off = it->first, rest = it->second - bytes;
      free.erase(it);
      if (rest) free.emplace(off + bytes, rest);
      return off;
    }
    return ~VkDeviceSize(0);
  }

  void give_back(VkDeviceSize off, VkDeviceSize bytes) {
    auto next = free.lower_bound(off);
    if (next != free.end() && off + bytes == next->first) {  // merge with the right neighbour
      bytes += next->second;
      next = free.erase(next);
    }
    if (next != free.begin()) {  // merge with the left neighbour
      auto prev = std::prev(next);
      if (prev->first + prev->second == off) {
        prev->second += bytes;
        return;
      }
    }
    free.emplace(off, bytes);
  }
};

namespace {
VkDeviceSize round_up(VkDeviceSize v, VkDeviceSize a) {
  return (v + a - 1) / a * a;
}
}  // namespace

Allocator::Allocator(VkDevice device, const DeviceCaps& caps, AllocatorOptions opts)
    : device_(device), caps_(caps), opts_(opts) {
  alignment_ = std::max<VkDeviceSize>(
      {16, caps.min_storage_buffer_offset_alignment, caps.non_coherent_atom_size});
  max_block_ =
      caps.max_memory_allocation_size ? caps.max_memory_allocation_size : VkDeviceSize(1) << 32;
  if (caps.max_buffer_size) max_block_ = std::min(max_block_, caps.max_buffer_size);
  max_block_ = max_block_ / alignment_ * alignment_;
  if (opts_.block_bytes == 0) opts_.block_bytes = 64ull << 20;
  opts_.block_bytes = std::min(round_up(opts_.block_bytes, alignment_), max_block_);
}

Allocator::~Allocator() {
  std::lock_guard lock(mu_);
  if (stats_.allocation_count)
    spdlog::warn("runtime: {} allocations still alive when the allocator is destroyed",
                 stats_.allocation_count);
  blocks_.clear();
}

std::uint32_t Allocator::pick_memory_type(MemoryUsage usage, std::uint32_t type_bits) const {
  constexpr int kNone = -1;
  auto score = [&](const MemoryType& t) -> int {
    switch (usage) {
      case MemoryUsage::DeviceLocal:
        return t.device_local ? 2 : 1;
      case MemoryUsage::Upload:
        if (!t.host_visible || !t.host_coherent) return kNone;
        return t.host_cached ? 1 : 2;  // write-combined is best for host writes
      case MemoryUsage::Readback:
        if (!t.host_visible || !t.host_coherent) return kNone;
        return t.host_cached ? 2 : 1;
    }
    return kNone;
  };
  int best = kNone;
  std::uint32_t best_index = 0;
  for (std::uint32_t i = 0; i < caps_.memory_types.size(); ++i) {
    if (!(type_bits & (1u << i))) continue;
    const int s = score(caps_.memory_types[i]);
    if (s > best) {
      best = s;
      best_index = i;
    }
  }
  if (best == kNone)
    throw OutOfDeviceMemory(std::string("runtime: no memory type suits ") + to_string(usage) +
                            " buffers on " + caps_.name);
  return best_index;
}

std::uint32_t Allocator::new_block(MemoryUsage usage, VkDeviceSize bytes, bool dedicated) {
  if (opts_.budget_bytes && stats_.block_bytes + bytes > opts_.budget_bytes)
    throw OutOfDeviceMemory("runtime: allocating a " + std::to_string(bytes) + "-byte " +
                            to_string(usage) + " block would exceed the memory budget of " +
                            std::to_string(opts_.budget_bytes) + " bytes (" +
                            std::to_string(stats_.block_bytes) + " in use by blocks)");
  auto b = std::make_unique<Block>();
  b->device = device_;
  b->usage = usage;
  b->dedicated = dedicated;
  b->size = bytes;

  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = bytes;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
             VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  KWAAI_VK_CHECK(vkCreateBuffer(device_, &bi, nullptr, &b->buffer));
  VkMemoryRequirements req{};
  vkGetBufferMemoryRequirements(device_, b->buffer, &req);

  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = pick_memory_type(usage, req.memoryTypeBits);
  const VkResult r = vkAllocateMemory(device_, &ai, nullptr, &b->memory);
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
    throw OutOfDeviceMemory("runtime: vkAllocateMemory of " + std::to_string(req.size) +
                            " bytes (" + to_string(usage) + ") failed with " + vk_result_name(r) +
                            "; " + std::to_string(stats_.block_bytes) + " bytes already held");
  KWAAI_VK_CHECK(r);
  KWAAI_VK_CHECK(vkBindBufferMemory(device_, b->buffer, b->memory, 0));
  if (usage != MemoryUsage::DeviceLocal) {
    void* p = nullptr;
    KWAAI_VK_CHECK(vkMapMemory(device_, b->memory, 0, VK_WHOLE_SIZE, 0, &p));
    b->mapped = static_cast<std::byte*>(p);
  }
  b->free.emplace(0, bytes);
  stats_.block_bytes += bytes;
  ++stats_.block_count;

  for (std::uint32_t i = 0; i < blocks_.size(); ++i)
    if (!blocks_[i]) {
      blocks_[i] = std::move(b);
      return i;
    }
  blocks_.push_back(std::move(b));
  return static_cast<std::uint32_t>(blocks_.size() - 1);
}

Allocation Allocator::allocate(VkDeviceSize bytes, MemoryUsage usage) {
  if (bytes == 0) throw std::invalid_argument("runtime: allocation of 0 bytes");
  const VkDeviceSize need = round_up(bytes, alignment_);
  if (need > max_block_)
    throw OutOfDeviceMemory("runtime: a " + std::to_string(bytes) + "-byte " + to_string(usage) +
                            " buffer exceeds the device's largest allocation/buffer (" +
                            std::to_string(max_block_) + " bytes) on " + caps_.name);
  std::lock_guard lock(mu_);
  std::uint32_t index = ~0u;
  VkDeviceSize off = 0;
  if (need > opts_.block_bytes / 2) {
    index = new_block(usage, need, /*dedicated=*/true);
    off = blocks_[index]->take(need);
  } else {
    for (std::uint32_t i = 0; i < blocks_.size() && index == ~0u; ++i) {
      Block* b = blocks_[i].get();
      if (!b || b->dedicated || b->usage != usage) continue;
      const VkDeviceSize o = b->take(need);
      if (o != ~VkDeviceSize(0)) {
        index = i;
        off = o;
      }
    }
    if (index == ~0u) {
      index = new_block(usage, opts_.block_bytes, /*dedicated=*/false);
      off = blocks_[index]->take(need);
    }
  }
  Block& b = *blocks_[index];
  ++b.live;
  stats_.used_bytes += need;
  stats_.peak_used_bytes = std::max(stats_.peak_used_bytes, stats_.used_bytes);
  ++stats_.allocation_count;
  ++stats_.total_allocations;

  Allocation a;
  a.allocator_ = this;
  a.block_ = index;
  a.reserved_ = need;
  a.usage_ = usage;
  a.ref_ = {b.buffer, off, bytes, b.mapped ? b.mapped + off : nullptr};
  return a;
}

void Allocator::free(Allocation& a) noexcept {
  std::lock_guard lock(mu_);
  Block* b = a.block_ < blocks_.size() ? blocks_[a.block_].get() : nullptr;
  if (!b) return;
  b->give_back(a.ref_.offset, a.reserved_);
  --b->live;
  stats_.used_bytes -= a.reserved_;
  --stats_.allocation_count;
  if (b->dedicated && b->live == 0) {  // dedicated blocks are not reused for other sizes
    stats_.block_bytes -= b->size;
    --stats_.block_count;
    blocks_[a.block_].reset();
  }
}

void Allocator::trim() {
  std::lock_guard lock(mu_);
  for (auto& b : blocks_)
    if (b && b->live == 0) {
      stats_.block_bytes -= b->size;
      --stats_.block_count;
      b.reset();
    }
}

MemoryStats Allocator::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace kwaai::runtime
