#include "runtime/stream.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "runtime/barrier_tracker.hpp"
#include "runtime/context.hpp"
#include "runtime/context_impl.hpp"
#include "runtime/error.hpp"

namespace kwaai::runtime {
namespace {

constexpr std::uint32_t kSetsPerPool = 256;
constexpr std::uint32_t kBuffersPerPool = kSetsPerPool * 8;
constexpr std::uint32_t kQueriesPerPool = 256;  // 128 timed dispatches per pool
constexpr VkDeviceSize kStagingChunk = 16ull << 20;
constexpr std::uint64_t kFenceTimeoutNs =
    300ull * 1000 * 1000 * 1000;  // a hung GPU, not a slow one

VkDeviceSize round_up(VkDeviceSize v, VkDeviceSize a) {
  return (v + a - 1) / a * a;
}

// Grow-on-demand host-visible memory for one recording; rewound after each wait().
class StagingArena {
 public:
  StagingArena(Allocator& a, MemoryUsage u) : alloc_(a), usage_(u) {}

  BufferRef take(VkDeviceSize bytes) {
    bytes = round_up(bytes, 16);
    for (; current_ < chunks_.size(); ++current_) {
      Chunk& c = chunks_[current_];
      if (c.mem.size() - c.used >= bytes) return bump(c, bytes);
      if (c.used == 0) break;  // an empty chunk that is too small: replace it below
    }
    Allocation a = alloc_.allocate(std::max(bytes, kStagingChunk), usage_);
    if (current_ < chunks_.size())
      chunks_[current_] = Chunk{std::move(a), 0};
    else
      chunks_.push_back(Chunk{std::move(a), 0});
    return bump(chunks_[current_], bytes);
  }
  void rewind() {
    for (auto& c : chunks_) c.used = 0;
    current_ = 0;
  }

 private:
  struct Chunk {
    Allocation mem;
    VkDeviceSize used = 0;
  };
  BufferRef bump(Chunk& c, VkDeviceSize bytes) {
    BufferRef r = c.mem.ref().slice(c.used, bytes);
    c.used += bytes;
    return r;
  }
  Allocator& alloc_;
  MemoryUsage usage_;
  std::vector<Chunk> chunks_;
  std::size_t current_ = 0;
};

}  // namespace

struct Stream::Impl {
  Context::Impl& ctx;
  const DeviceCaps& caps;
  VkDevice device;
  VkCommandPool pool = VK_NULL_HANDLE;
  VkCommandBuffer cb = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  std::vector<VkDescriptorPool> desc_pools;
  std::size_t desc_current = 0;
  std::vector<VkQueryPool> query_pools;
  std::uint32_t queries_used = 0;  // in this recording, across pools
  StagingArena upload_arena;
  StagingArena readback_arena;
  detail::BarrierTracker tracker;

  struct Download {
    BufferRef staging;
    std::span<std::byte> host;
  };
  std::vector<Download> downloads;
  std::vector<std::string> labels;  // one per timed dispatch
  std::vector<Timing> timings;
  bool recording = false, submitted = false, profiling = false;
  std::size_t commands = 0, barriers = 0;

  explicit Impl(Context& c)
      : ctx(c.impl()),
        caps(c.caps()),
        device(c.device()),
        upload_arena(c.allocator(), MemoryUsage::Upload),
        readback_arena(c.allocator(), MemoryUsage::Readback) {
    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
    pci.queueFamilyIndex = c.queue_family();
    KWAAI_VK_CHECK(vkCreateCommandPool(device, &pci, nullptr, &pool));
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    KWAAI_VK_CHECK(vkAllocateCommandBuffers(device, &ai, &cb));
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    KWAAI_VK_CHECK(vkCreateFence(device, &fci, nullptr, &fence));
  }

  ~Impl() {
    if (submitted) vkWaitForFences(device, 1, &fence, VK_TRUE, kFenceTimeoutNs);
    for (auto q : query_pools) vkDestroyQueryPool(device, q, nullptr);
    for (auto d : desc_pools) vkDestroyDescriptorPool(device, d, nullptr);
    if (fence) vkDestroyFence(device, fence, nullptr);
    if (pool) vkDestroyCommandPool(device, pool, nullptr);  // frees cb
  }

  void begin() {
    if (submitted) finish();
    if (recording) return;
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    KWAAI_VK_CHECK(vkBeginCommandBuffer(cb, &bi));
    // Submission order alone is no memory dependency: order this command buffer after the
    // writes of earlier submissions (from any Stream). One barrier per submission; not
    // counted in recorded_barriers(), which reports the derived ones.
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                       VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags stages =
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cb, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
    recording = true;
    commands = barriers = 0;
    tracker.reset();
  }

  void barrier_for(std::span<const detail::AccessDecl> acc) {
    if (auto b = tracker.add(acc)) {
      VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      mb.srcAccessMask = b->src_access;
      mb.dstAccessMask = b->dst_access;
      vkCmdPipelineBarrier(cb, b->src_stages, b->dst_stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
      ++barriers;
    }
    ++commands;
  }

  VkDescriptorSet alloc_set(VkDescriptorSetLayout layout) {
    for (;; ++desc_current) {
      if (desc_current == desc_pools.size()) {
        VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kBuffersPerPool};
        VkDescriptorPoolCreateInfo ci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
        ci.maxSets = kSetsPerPool;
        ci.poolSizeCount = 1;
        ci.pPoolSizes = &size;
        VkDescriptorPool p = VK_NULL_HANDLE;
        KWAAI_VK_CHECK(vkCreateDescriptorPool(device, &ci, nullptr, &p));
        desc_pools.push_back(p);
      }
      VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
      ai.descriptorPool = desc_pools[desc_current];
      ai.descriptorSetCount = 1;
      ai.pSetLayouts = &layout;
      VkDescriptorSet set = VK_NULL_HANDLE;
      const VkResult r = vkAllocateDescriptorSets(device, &ai, &set);
      if (r == VK_SUCCESS) return set;
      if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
        throw_vk_error(r, "vkAllocateDescriptorSets", __FILE__, __LINE__);
      // This pool is full: move on to the next one (created on demand).
    }
  }

  // Two queries (begin, end) for a timed dispatch; resets each pool at its first use.
  std::pair<VkQueryPool, std::uint32_t> take_queries() {
    const std::uint32_t pool_index = queries_used / kQueriesPerPool;
    const std::uint32_t q = queries_used % kQueriesPerPool;
    if (pool_index == query_pools.size()) {
      VkQueryPoolCreateInfo ci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
      ci.queryType = VK_QUERY_TYPE_TIMESTAMP;
      ci.queryCount = kQueriesPerPool;
      VkQueryPool p = VK_NULL_HANDLE;
      KWAAI_VK_CHECK(vkCreateQueryPool(device, &ci, nullptr, &p));
      query_pools.push_back(p);
    }
    if (q == 0) vkCmdResetQueryPool(cb, query_pools[pool_index], 0, kQueriesPerPool);
    queries_used += 2;
    return {query_pools[pool_index], q};
  }

  void submit() {
    if (!recording) return;
    if (!downloads.empty()) {
      // Make the readback copies visible to the host reads done in finish().
      VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
      vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                           &mb, 0, nullptr, 0, nullptr);
      ++barriers;
    }
    KWAAI_VK_CHECK(vkEndCommandBuffer(cb));
    recording = false;
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cb;
    {
      std::lock_guard lock(ctx.submit_mu);
      KWAAI_VK_CHECK(vkQueueSubmit(ctx.queue, 1, &si, fence));
    }
    submitted = true;
  }

  void finish() {
    if (recording) submit();
    if (!submitted) return;
    const VkResult r = vkWaitForFences(device, 1, &fence, VK_TRUE, kFenceTimeoutNs);
    if (r == VK_TIMEOUT)
      throw VulkanError(r, "runtime: a submitted command buffer did not finish within 300 s");
    KWAAI_VK_CHECK(r);
    submitted = false;
    KWAAI_VK_CHECK(vkResetFences(device, 1, &fence));

    for (const auto& d : downloads) std::memcpy(d.host.data(), d.staging.mapped, d.host.size());
    downloads.clear();

    if (!labels.empty()) {
      const double ns_per_tick = caps.timestamp_period_ns;
      std::vector<std::uint64_t> ticks(kQueriesPerPool);
      for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::size_t pool_index = (2 * i) / kQueriesPerPool;
        if ((2 * i) % kQueriesPerPool == 0) {
          const std::uint32_t n = std::min<std::uint32_t>(kQueriesPerPool, queries_used - 2 * i);
          KWAAI_VK_CHECK(vkGetQueryPoolResults(
              device, query_pools[pool_index], 0, n, n * sizeof(std::uint64_t), ticks.data(),
              sizeof(std::uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
        }
        const std::size_t q = (2 * i) % kQueriesPerPool;
        // Counters narrower than 64 bits wrap: the difference modulo 2^bits is the duration.
        const std::uint32_t bits = caps.timestamp_valid_bits;
        const std::uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
        const std::uint64_t dt = (ticks[q + 1] - ticks[q]) & mask;
        timings.push_back({labels[i], double(dt) * ns_per_tick * 1e-9});
      }
      labels.clear();
    }
    queries_used = 0;

    KWAAI_VK_CHECK(vkResetCommandPool(device, pool, 0));
    for (auto d : desc_pools) KWAAI_VK_CHECK(vkResetDescriptorPool(device, d, 0));
    desc_current = 0;
    upload_arena.rewind();
    readback_arena.rewind();
  }
};

Stream::Stream(Context& ctx) : impl_(std::make_unique<Impl>(ctx)) {}
Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;

namespace {
void check_range(const BufferRef& r, VkDeviceSize off, VkDeviceSize bytes, const char* what) {
  if (!r) throw std::invalid_argument(std::string("runtime: ") + what + ": null buffer");
  if (off > r.size || bytes > r.size - off)
    throw std::out_of_range(std::string("runtime: ") + what + ": [" + std::to_string(off) + ", +" +
                            std::to_string(bytes) + ") outside a " + std::to_string(r.size) +
                            "-byte range");
}
}  // namespace

void Stream::upload(BufferRef dst, VkDeviceSize offset, std::span<const std::byte> bytes) {
  check_range(dst, offset, bytes.size(), "upload");
  if (bytes.empty()) return;
  auto& s = *impl_;
  s.begin();
  BufferRef st = s.upload_arena.take(bytes.size());
  std::memcpy(st.mapped, bytes.data(), bytes.size());  // host write before submit: no barrier
  const detail::AccessDecl acc[] = {
      {st.buffer, st.offset, st.offset + bytes.size(), false, detail::StageKind::Transfer},
      {dst.buffer, dst.offset + offset, dst.offset + offset + bytes.size(), true,
       detail::StageKind::Transfer}};
  s.barrier_for(acc);
  VkBufferCopy region{st.offset, dst.offset + offset, bytes.size()};
  vkCmdCopyBuffer(s.cb, st.buffer, dst.buffer, 1, &region);
}

void Stream::dispatch(const Pipeline& p, std::span<const Binding> bindings,
                      std::span<const std::byte> push, std::uint32_t gx, std::uint32_t gy,
                      std::uint32_t gz, std::string_view label) {
  auto& s = *impl_;
  const std::string& name = p.name();
  if (bindings.size() != p.binding_count())
    throw std::invalid_argument("runtime: dispatch of '" + name + "' with " +
                                std::to_string(bindings.size()) + " bindings; the kernel has " +
                                std::to_string(p.binding_count()));
  if (push.size() != p.push_constant_bytes())
    throw std::invalid_argument(
        "runtime: dispatch of '" + name + "' with " + std::to_string(push.size()) +
        " push-constant bytes; the kernel takes " + std::to_string(p.push_constant_bytes()));
  const std::uint32_t groups[3] = {gx, gy, gz};
  for (int d = 0; d < 3; ++d)
    if (groups[d] == 0 || groups[d] > s.caps.max_compute_work_group_count[d])
      throw std::length_error("runtime: dispatch of '" + name + "': group count[" +
                              std::to_string(d) + "] = " + std::to_string(groups[d]) +
                              " outside 1..maxComputeWorkGroupCount " +
                              std::to_string(s.caps.max_compute_work_group_count[d]));
  const VkDeviceSize align = std::max<VkDeviceSize>(s.caps.min_storage_buffer_offset_alignment, 1);
  std::vector<detail::AccessDecl> acc;
  std::vector<VkDescriptorBufferInfo> infos;
  acc.reserve(bindings.size());
  infos.reserve(bindings.size());
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    const BufferRef& r = bindings[i].ref;
    if (!r || r.size == 0)
      throw std::invalid_argument("runtime: dispatch of '" + name + "': binding " +
                                  std::to_string(i) + " is empty");
    if (r.size > s.caps.max_storage_buffer_range)
      throw std::length_error("runtime: dispatch of '" + name + "': binding " + std::to_string(i) +
                              " covers " + std::to_string(r.size) +
                              " bytes > maxStorageBufferRange " +
                              std::to_string(s.caps.max_storage_buffer_range) +
                              " (split it with Context::binding_windows)");
    if (r.offset % align)
      throw std::length_error("runtime: dispatch of '" + name + "': binding " + std::to_string(i) +
                              " offset " + std::to_string(r.offset) +
                              " is not a multiple of minStorageBufferOffsetAlignment " +
                              std::to_string(align));
    const auto a = static_cast<std::uint8_t>(bindings[i].access);
    if (a & static_cast<std::uint8_t>(Access::Read))
      acc.push_back({r.buffer, r.offset, r.offset + r.size, false, detail::StageKind::Compute});
    if (a & static_cast<std::uint8_t>(Access::Write))
      acc.push_back({r.buffer, r.offset, r.offset + r.size, true, detail::StageKind::Compute});
    infos.push_back({r.buffer, r.offset, r.size});
  }

  s.begin();
  s.barrier_for(acc);
  VkDescriptorSet set = s.alloc_set(p.set_layout());
  std::vector<VkWriteDescriptorSet> writes(infos.size());
  for (std::size_t i = 0; i < infos.size(); ++i) {
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes[i].dstSet = set;
    writes[i].dstBinding = static_cast<std::uint32_t>(i);
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  vkUpdateDescriptorSets(s.device, static_cast<std::uint32_t>(writes.size()), writes.data(), 0,
                         nullptr);
  vkCmdBindPipeline(s.cb, VK_PIPELINE_BIND_POINT_COMPUTE, p.handle());
  vkCmdBindDescriptorSets(s.cb, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout(), 0, 1, &set, 0, nullptr);
  if (!push.empty())
    vkCmdPushConstants(s.cb, p.layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0,
                       static_cast<std::uint32_t>(push.size()), push.data());
  const bool timed = s.profiling && s.caps.timestamps_supported;
  std::pair<VkQueryPool, std::uint32_t> q{};
  if (timed) {
    q = s.take_queries();
    vkCmdWriteTimestamp(s.cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, q.first, q.second);
  }
  vkCmdDispatch(s.cb, gx, gy, gz);
  if (timed) {
    vkCmdWriteTimestamp(s.cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, q.first, q.second + 1);
    s.labels.emplace_back(label.empty() ? name : std::string(label));
  }
}

void Stream::copy(BufferRef src, BufferRef dst, VkDeviceSize bytes) {
  check_range(src, 0, bytes, "copy source");
  check_range(dst, 0, bytes, "copy destination");
  if (bytes == 0) return;
  if (src.buffer == dst.buffer && src.offset < dst.offset + bytes &&
      dst.offset < src.offset + bytes)
    throw std::invalid_argument("runtime: copy between overlapping ranges");
  auto& s = *impl_;
  s.begin();
  const detail::AccessDecl acc[] = {
      {src.buffer, src.offset, src.offset + bytes, false, detail::StageKind::Transfer},
      {dst.buffer, dst.offset, dst.offset + bytes, true, detail::StageKind::Transfer}};
  s.barrier_for(acc);
  VkBufferCopy region{src.offset, dst.offset, bytes};
  vkCmdCopyBuffer(s.cb, src.buffer, dst.buffer, 1, &region);
}

void Stream::fill(BufferRef dst, std::uint32_t word) {
  check_range(dst, 0, dst.size, "fill");
  if (dst.offset % 4 || dst.size % 4)
    throw std::invalid_argument("runtime: fill needs offset and size multiples of 4 (got " +
                                std::to_string(dst.offset) + ", " + std::to_string(dst.size) + ")");
  auto& s = *impl_;
  s.begin();
  const detail::AccessDecl acc[] = {
      {dst.buffer, dst.offset, dst.offset + dst.size, true, detail::StageKind::Transfer}};
  s.barrier_for(acc);
  vkCmdFillBuffer(s.cb, dst.buffer, dst.offset, dst.size, word);
}

void Stream::download(BufferRef src, std::span<std::byte> host_dst) {
  check_range(src, 0, host_dst.size(), "download");
  if (host_dst.empty()) return;
  auto& s = *impl_;
  s.begin();
  BufferRef st = s.readback_arena.take(host_dst.size());
  const detail::AccessDecl acc[] = {
      {src.buffer, src.offset, src.offset + host_dst.size(), false, detail::StageKind::Transfer},
      {st.buffer, st.offset, st.offset + host_dst.size(), true, detail::StageKind::Transfer}};
  s.barrier_for(acc);
  VkBufferCopy region{src.offset, st.offset, host_dst.size()};
  vkCmdCopyBuffer(s.cb, src.buffer, st.buffer, 1, &region);
  s.downloads.push_back({st, host_dst});
}

void Stream::submit() {
  impl_->submit();
}
void Stream::wait() {
  impl_->finish();
}
void Stream::set_profiling(bool on) {
  impl_->profiling = on;
}
bool Stream::profiling() const {
  return impl_->profiling;
}
std::vector<Timing> Stream::take_timings() {
  return std::exchange(impl_->timings, {});
}
std::size_t Stream::recorded_commands() const {
  return impl_->commands;
}
std::size_t Stream::recorded_barriers() const {
  return impl_->barriers;
}
bool Stream::empty() const {
  return !impl_->recording && !impl_->submitted;
}

}  // namespace kwaai::runtime
