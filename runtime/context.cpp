#include "runtime/context.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <numeric>
#include <stdexcept>

#include "runtime/context_impl.hpp"
#include "runtime/device_query.hpp"
#include "runtime/pipeline_factory.hpp"

namespace kwaai::runtime {

// ---------------------------------------------------------------- options

std::optional<std::filesystem::path> ContextOptions::default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "kwaainet";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::filesystem::path(h) / ".cache" / "kwaainet";
  return std::nullopt;
}

ContextOptions ContextOptions::from_environment() {
  ContextOptions o;
  if (const char* v = std::getenv("KWAAI_VK_VALIDATION"))
    o.enable_validation = std::string(v) == "1" || std::string(v) == "true";
  if (const char* d = std::getenv("KWAAI_VK_DEVICE"); d && *d)
    o.device_index = static_cast<std::uint32_t>(std::strtoul(d, nullptr, 10));
  if (const char* c = std::getenv("KWAAI_VK_CHECK"))
    o.check_ops = std::string(c) == "1" || std::string(c) == "true";
  if (const char* t = std::getenv("KWAAI_VK_CHECK_TOL"); t && *t)
    o.check_tolerance = std::strtod(t, nullptr);
  const char* pc = std::getenv("KWAAI_VK_PIPELINE_CACHE");
  if (!(pc && std::string(pc) == "0")) o.pipeline_cache_dir = default_cache_dir();
  spdlog::debug("runtime options: device {} validation {} pipeline cache {}", o.device_index,
                o.enable_validation,
                o.pipeline_cache_dir ? o.pipeline_cache_dir->string() : "(off)");
  return o;
}

// ---------------------------------------------------------------- Impl

Context::Impl::~Impl() {
  if (device) {
    vkDeviceWaitIdle(device);
    if (cache) cache->save();
    pipelines.clear();
    cache.reset();
    allocator.reset();
    vkDestroyDevice(device, nullptr);
  }
  instance.reset();
}

// ---------------------------------------------------------------- creation

std::vector<DeviceCaps> Context::enumerate() {
  detail::Instance inst(false, false);
  std::vector<DeviceCaps> out;
  std::uint32_t i = 0;
  for (VkPhysicalDevice pd : inst.physical_devices())
    out.push_back(detail::query_caps(pd, i++, inst.api_version()));
  return out;
}

Context Context::create(const ContextOptions& opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  impl->instance =
      std::make_unique<detail::Instance>(opts.enable_validation, opts.enable_sync_validation);
  const auto devices = impl->instance->physical_devices();
  if (opts.device_index >= devices.size())
    throw NoVulkanDevice("Vulkan device index " + std::to_string(opts.device_index) +
                         " requested but only " + std::to_string(devices.size()) +
                         " device(s) exist");
  impl->physical = devices[opts.device_index];
  impl->caps = detail::query_caps(impl->physical, opts.device_index, impl->instance->api_version());
  const DeviceCaps& caps = impl->caps;
  if (caps.api_version < VK_API_VERSION_1_2)
    throw NoVulkanDevice("Vulkan device '" + caps.name + "' supports API " +
                         caps.api_version_string() + "; kwaainet needs 1.2");

  // A queue family with compute (transfers are allowed on any compute queue); prefer one with
  // timestamps.
  std::uint32_t qn = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(impl->physical, &qn, nullptr);
  std::vector<VkQueueFamilyProperties> qf(qn);
  vkGetPhysicalDeviceQueueFamilyProperties(impl->physical, &qn, qf.data());
  int family = -1;
  for (std::uint32_t i = 0; i < qn; ++i) {
    if (!(qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
    if (family < 0 || (qf[family].timestampValidBits == 0 && qf[i].timestampValidBits > 0))
      family = static_cast<int>(i);
  }
  if (family < 0) throw NoVulkanDevice("Vulkan device '" + caps.name + "' has no compute queue");
  impl->queue_family = static_cast<std::uint32_t>(family);

  detail::FeatureChain available, enabled;
  available.query(impl->physical, std::min(caps.api_version, impl->instance->api_version()));
  enabled.select_from(available);

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qci.queueFamilyIndex = impl->queue_family;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;
  // A portability implementation (MoltenVK) requires its subset extension to be enabled.
  std::vector<const char*> dev_exts;
  if (caps.portability_subset) dev_exts.push_back(kPortabilitySubsetExtension);
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.pNext = &enabled.core;
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  dci.enabledExtensionCount = static_cast<std::uint32_t>(dev_exts.size());
  dci.ppEnabledExtensionNames = dev_exts.data();
  KWAAI_VK_CHECK(vkCreateDevice(impl->physical, &dci, nullptr, &impl->device));
  vkGetDeviceQueue(impl->device, impl->queue_family, 0, &impl->queue);

  impl->allocator = std::make_unique<Allocator>(
      impl->device, impl->caps, AllocatorOptions{opts.block_bytes, opts.memory_budget_bytes});
  impl->cache =
      std::make_unique<detail::PipelineCache>(impl->device, impl->caps, opts.pipeline_cache_dir);
  spdlog::debug("runtime: device {} '{}' ({}, {}), validation {}", opts.device_index, caps.name,
                to_string(caps.type), caps.driver_info, opts.enable_validation);
  return Context(std::move(impl));
}

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;
Context::~Context() = default;

// ---------------------------------------------------------------- accessors

const DeviceCaps& Context::caps() const {
  return impl_->caps;
}
const ContextOptions& Context::options() const {
  return impl_->opts;
}
VkInstance Context::instance() const {
  return impl_->instance->handle();
}
VkPhysicalDevice Context::physical_device() const {
  return impl_->physical;
}
VkDevice Context::device() const {
  return impl_->device;
}
VkQueue Context::queue() const {
  return impl_->queue;
}
std::uint32_t Context::queue_family() const {
  return impl_->queue_family;
}

Allocation Context::alloc_device(VkDeviceSize bytes) {
  return impl_->allocator->allocate(bytes, MemoryUsage::DeviceLocal);
}
Allocation Context::alloc_upload(VkDeviceSize bytes) {
  return impl_->allocator->allocate(bytes, MemoryUsage::Upload);
}
Allocation Context::alloc_readback(VkDeviceSize bytes) {
  return impl_->allocator->allocate(bytes, MemoryUsage::Readback);
}
Allocator& Context::allocator() {
  return *impl_->allocator;
}
MemoryStats Context::memory_stats() const {
  return impl_->allocator->stats();
}

// ---------------------------------------------------------------- large buffers

VkDeviceSize Context::max_binding_range() const {
  return impl_->caps.max_storage_buffer_range;
}
VkDeviceSize Context::binding_alignment() const {
  return std::max<VkDeviceSize>(impl_->caps.min_storage_buffer_offset_alignment, 4);
}

std::vector<BufferRef> Context::binding_windows(BufferRef whole, VkDeviceSize granule) const {
  if (granule == 0) throw std::invalid_argument("runtime: binding_windows with granule 0");
  const VkDeviceSize align = binding_alignment();
  if (whole.offset % align)
    throw std::invalid_argument("runtime: binding_windows: offset " + std::to_string(whole.offset) +
                                " not aligned to " + std::to_string(align));
  if (whole.size <= max_binding_range()) return {whole};
  const VkDeviceSize step = std::lcm(granule, align);
  const VkDeviceSize window = max_binding_range() / step * step;
  if (window == 0)
    throw std::length_error(
        "runtime: granule " + std::to_string(granule) + " bytes (aligned: " + std::to_string(step) +
        ") exceeds maxStorageBufferRange " + std::to_string(max_binding_range()));
  std::vector<BufferRef> out;
  for (VkDeviceSize off = 0; off < whole.size; off += window)
    out.push_back(whole.slice(off, std::min(window, whole.size - off)));
  return out;
}

// ---------------------------------------------------------------- pipelines

bool Context::supports(const kernels::KernelInfo& k) const {
  return (k.features & ~impl_->caps.kernel_features()) == 0 &&
         k.binding_count <= impl_->caps.max_storage_buffers_per_stage;
}

Pipeline& Context::pipeline(std::string_view name, std::span<const SpecConstant> spec) {
  std::string key(name);
  for (const auto& s : spec) {
    key += '|';
    key += std::to_string(s.id);
    key += '=';
    key += std::to_string(s.value);
  }
  std::lock_guard lock(impl_->pipelines_mu);
  if (auto it = impl_->pipelines.find(key); it != impl_->pipelines.end()) return *it->second;
  const kernels::KernelInfo& k = kernels::kernel(name);
  if (!supports(k)) {
    std::string missing;
    for (std::uint32_t bit = 1; bit; bit <<= 1)
      if (k.features & bit & ~impl_->caps.kernel_features())
        missing += std::string(missing.empty() ? "" : ", ") +
                   std::string(kernels::feature_name(static_cast<kernels::Feature>(bit)));
    if (k.binding_count > impl_->caps.max_storage_buffers_per_stage)
      missing += std::string(missing.empty() ? "" : ", ") + std::to_string(k.binding_count) +
                 " storage buffers per stage (it allows " +
                 std::to_string(impl_->caps.max_storage_buffers_per_stage) + ")";
    throw UnsupportedKernel("runtime: kernel '" + std::string(name) + "' needs " + missing +
                            ", which device '" + impl_->caps.name + "' lacks");
  }
  auto p = PipelineFactory::create(impl_->device, impl_->cache->handle(), impl_->caps, k, spec);
  Pipeline& ref = *p;
  impl_->pipelines.emplace(std::move(key), std::move(p));
  return ref;
}

void Context::save_pipeline_cache() {
  impl_->cache->save();
}
std::optional<std::filesystem::path> Context::pipeline_cache_file() const {
  return impl_->cache->file();
}
bool Context::pipeline_cache_loaded() const {
  return impl_->cache->loaded();
}

// ---------------------------------------------------------------- validation

std::size_t Context::validation_message_count() const {
  return impl_->instance->log().count();
}
std::vector<std::string> Context::validation_messages() const {
  return impl_->instance->log().messages();
}
void Context::clear_validation_messages() {
  impl_->instance->log().clear();
}
std::shared_ptr<const ValidationLog> Context::validation_log() const {
  return impl_->instance->shared_log();
}

}  // namespace kwaai::runtime
