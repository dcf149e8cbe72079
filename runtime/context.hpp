// The runtime's entry point: one Vulkan instance + the chosen physical device + a logical
// device with one compute queue, its capabilities, the memory sub-allocator and the pipeline
// cache. Move-only (pimpl: addresses of pipelines and the allocator stay stable).
//
//   auto ctx = runtime::Context::create({.device_index = 0, .enable_validation = true});
//   runtime::Allocation x = ctx.alloc_device(n * 4);
//   runtime::Pipeline& p = ctx.pipeline("scale_f32");
//   runtime::Stream s(ctx);                      // see runtime/stream.hpp
//   s.upload(x.ref(), host_bytes);
//   s.dispatch(p, {{x.ref(), runtime::Access::Read}, {y.ref(), runtime::Access::Write}},
//              runtime::push_bytes(params), groups, 1, 1, "scale");
//   s.download(y.ref(), out_bytes);
//   s.submit_and_wait();
//
// Validation: with enable_validation the Khronos validation layer (+ synchronization
// validation) is enabled and every warning/error message it sends is recorded; tests assert
// validation_message_count() == 0. Queue submission is single-threaded: one Stream at a time
// may be submitting (several Streams may record; submissions are serialised by the Context).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/kernel_table.hpp"
#include "runtime/device_caps.hpp"
#include "runtime/error.hpp"
#include "runtime/memory.hpp"
#include "runtime/pipeline.hpp"
#include "runtime/validation_log.hpp"
#include "runtime/vk.hpp"

namespace kwaai::runtime {

struct ContextOptions {
  std::uint32_t device_index = 0;
  bool enable_validation = false;
  // With validation: also VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT, which
  // reports missing barriers (hazards) between recorded commands.
  bool enable_sync_validation = true;
  // Directory for the on-disk VkPipelineCache; nullopt = in-memory only.
  std::optional<std::filesystem::path> pipeline_cache_dir;
  VkDeviceSize block_bytes = 64ull << 20;  // sub-allocator block size
  VkDeviceSize memory_budget_bytes = 0;    // 0 = no cap beyond the device's own
  // Check mode (engine/check_backend.hpp): every op is rerun on the CPU backend and compared;
  // tolerance 0 = the check's default.
  bool check_ops = false;
  double check_tolerance = 0;

  // The one place the runtime reads the environment: KWAAI_VK_VALIDATION=1 enables validation,
  // KWAAI_VK_DEVICE=<n> picks the device, the cache dir is $XDG_CACHE_HOME/kwaainet or
  // ~/.cache/kwaainet (KWAAI_VK_PIPELINE_CACHE=0 disables it), KWAAI_VK_CHECK=1 turns on check
  // mode (KWAAI_VK_CHECK_TOL=<relative L2> sets its tolerance).
  static ContextOptions from_environment();
  static std::optional<std::filesystem::path> default_cache_dir();
};

class Context {
 public:
  // Throws NoVulkanDevice (no loader, no driver, index out of range), VulkanError otherwise.
  static Context create(const ContextOptions& opts);
  // Every device the loader offers (CPU devices such as lavapipe included), in index order.
  // Throws NoVulkanDevice when there is no loader or no device at all.
  static std::vector<DeviceCaps> enumerate();

  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  ~Context();  // waits for the device to go idle, saves the pipeline cache

  const DeviceCaps& caps() const;
  const ContextOptions& options() const;
  VkInstance instance() const;
  VkPhysicalDevice physical_device() const;
  VkDevice device() const;
  VkQueue queue() const;
  std::uint32_t queue_family() const;

  // ---- memory ----
  Allocation alloc_device(VkDeviceSize bytes);
  Allocation alloc_upload(VkDeviceSize bytes);    // host-visible, mapped
  Allocation alloc_readback(VkDeviceSize bytes);  // host-visible, mapped
  Allocator& allocator();
  MemoryStats memory_stats() const;

  // Large buffers (see runtime/memory.hpp): max bytes one binding may cover, the offset
  // alignment of a binding, and the split of `whole` (whose offset must be aligned, as every
  // Allocation is) into bindable windows. Every window but the last has the same size W, the
  // largest multiple of lcm(granule, binding_alignment()) <= max_binding_range(), so window i
  // starts at whole.offset + i*W and holds whole granules (rows, quant blocks). One window
  // when `whole` fits. Throws std::length_error if lcm(granule, alignment) > max range.
  VkDeviceSize max_binding_range() const;
  VkDeviceSize binding_alignment() const;
  std::vector<BufferRef> binding_windows(BufferRef whole, VkDeviceSize granule) const;

  // ---- pipelines ----
  // The pipeline for kernel `name` with these spec constants (cached; first call compiles,
  // through the on-disk VkPipelineCache). Throws std::out_of_range (unknown kernel),
  // UnsupportedKernel (device lacks a feature), std::invalid_argument (contract mismatch).
  Pipeline& pipeline(std::string_view name, std::span<const SpecConstant> spec = {});
  bool supports(const kernels::KernelInfo& k) const;
  // Writes the pipeline cache file now (also done by the destructor). No-op without a dir.
  void save_pipeline_cache();
  // The cache file for this device (UUID + driver version in the name); nullopt without a dir.
  std::optional<std::filesystem::path> pipeline_cache_file() const;
  // True when the cache file existed and was accepted at creation.
  bool pipeline_cache_loaded() const;

  // ---- validation ----
  std::size_t validation_message_count() const;
  std::vector<std::string> validation_messages() const;
  void clear_validation_messages();
  // The log itself; stays readable after the Context is gone (teardown messages included).
  std::shared_ptr<const ValidationLog> validation_log() const;

  // Internal: serialises vkQueueSubmit across Streams.
  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit Context(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kwaai::runtime
