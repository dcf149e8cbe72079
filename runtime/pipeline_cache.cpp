#include "runtime/pipeline_cache.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/replace_file.hpp"

namespace kwaai::runtime::detail {
namespace {

constexpr char kMagic[4] = {'K', 'W', 'P', 'C'};
constexpr std::uint32_t kFormat = 1;
constexpr std::size_t kHeader = 24;
constexpr std::uint64_t kMaxFile = 1ull << 30;  // a cache larger than this is not ours

std::uint64_t fnv1a64(const std::uint8_t* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

template <class T>
T load_le(const std::uint8_t* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= T(p[i]) << (8 * i);
  return v;
}

template <class T>
void store_le(std::vector<std::uint8_t>& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(std::uint8_t(v >> (8 * i)));
}

// The payload if the file is intact and made by this device+driver; else nullopt + log.
std::optional<std::vector<std::uint8_t>> read_cache(const std::filesystem::path& file,
                                                    const DeviceCaps& caps) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return std::nullopt;
  const auto size = std::filesystem::file_size(file, ec);
  auto ignore = [&](const std::string& why) -> std::optional<std::vector<std::uint8_t>> {
    spdlog::warn("runtime: ignoring pipeline cache {}: {}", file.string(), why);
    return std::nullopt;
  };
  if (ec) return ignore(ec.message());
  if (size < kHeader || size > kMaxFile) return ignore("size " + std::to_string(size));
  std::ifstream in(file, std::ios::binary);
  std::vector<std::uint8_t> bytes(size);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size)))
    return ignore("read failed");
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) return ignore("bad magic");
  if (load_le<std::uint32_t>(&bytes[4]) != kFormat) return ignore("unknown format version");
  const auto payload = load_le<std::uint64_t>(&bytes[8]);
  if (payload != size - kHeader) return ignore("payload size mismatch");
  if (load_le<std::uint64_t>(&bytes[16]) != fnv1a64(&bytes[kHeader], payload))
    return ignore("checksum mismatch");
  std::vector<std::uint8_t> data(bytes.begin() + kHeader, bytes.end());
  // Vulkan's own header (VkPipelineCacheHeaderVersionOne): length, version, vendor, device, UUID.
  if (data.size() < 32) return ignore("Vulkan cache header missing");
  if (load_le<std::uint32_t>(&data[4]) != VK_PIPELINE_CACHE_HEADER_VERSION_ONE ||
      load_le<std::uint32_t>(&data[8]) != caps.vendor_id ||
      load_le<std::uint32_t>(&data[12]) != caps.device_id ||
      std::memcmp(&data[16], caps.pipeline_cache_uuid, VK_UUID_SIZE) != 0)
    return ignore("made by another device or driver");
  return data;
}

}  // namespace

PipelineCache::PipelineCache(VkDevice device, const DeviceCaps& caps,
                             std::optional<std::filesystem::path> dir)
    : device_(device) {
  std::vector<std::uint8_t> initial;
  if (dir) {
    char name[128];
    std::snprintf(name, sizeof name, "pipelines-%04x-%04x-%s-%08x.bin", caps.vendor_id,
                  caps.device_id, caps.pipeline_cache_uuid_hex().c_str(), caps.driver_version);
    file_ = *dir / name;
    if (auto data = read_cache(*file_, caps)) {
      initial = std::move(*data);
      loaded_ = true;
    }
  }
  VkPipelineCacheCreateInfo ci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  ci.initialDataSize = initial.size();
  ci.pInitialData = initial.empty() ? nullptr : initial.data();
  VkResult r = vkCreatePipelineCache(device_, &ci, nullptr, &cache_);
  if (r != VK_SUCCESS && loaded_) {
    // The driver refused data that passed our checks: start empty rather than fail.
    spdlog::warn("runtime: driver rejected pipeline cache {} ({}); starting empty", file_->string(),
                 vk_result_name(r));
    loaded_ = false;
    ci.initialDataSize = 0;
    ci.pInitialData = nullptr;
    r = vkCreatePipelineCache(device_, &ci, nullptr, &cache_);
  }
  KWAAI_VK_CHECK(r);
  if (loaded_) spdlog::debug("runtime: pipeline cache loaded from {}", file_->string());
}

PipelineCache::~PipelineCache() {
  if (cache_) vkDestroyPipelineCache(device_, cache_, nullptr);
}

void PipelineCache::save() const {
  if (!file_) return;
  try {
    std::size_t n = 0;
    KWAAI_VK_CHECK(vkGetPipelineCacheData(device_, cache_, &n, nullptr));
    std::vector<std::uint8_t> data(n);
    if (n) KWAAI_VK_CHECK(vkGetPipelineCacheData(device_, cache_, &n, data.data()));
    data.resize(n);
    std::vector<std::uint8_t> out(kMagic, kMagic + 4);
    store_le<std::uint32_t>(out, kFormat);
    store_le<std::uint64_t>(out, data.size());
    store_le<std::uint64_t>(out, fnv1a64(data.data(), data.size()));
    out.insert(out.end(), data.begin(), data.end());

    // Test runs start many processes that save at once; replace_file gives each its own
    // temporary (a shared one interleaved their writes, and the checksum then rejected the file).
    replace_file(*file_, std::string_view(reinterpret_cast<const char*>(out.data()), out.size()));
    spdlog::debug("runtime: pipeline cache saved to {} ({} bytes)", file_->string(), out.size());
  } catch (const std::exception& e) {
    spdlog::warn("runtime: could not save pipeline cache {}: {}", file_->string(), e.what());
  }
}

}  // namespace kwaai::runtime::detail
