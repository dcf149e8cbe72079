// Internal: the VkPipelineCache and its file on disk.
//
// File: <dir>/pipelines-<vendor>-<device>-<pipelineCacheUUID>-<driverVersion>.bin, so a driver
// update or another GPU never reads a foreign cache. Content: our 24-byte header ("KWPC",
// format version, payload size, FNV-1a 64 of the payload) + the vkGetPipelineCacheData blob.
// A file that is short, has a wrong header/checksum, or whose Vulkan cache header names
// another device is ignored with a log line (and replaced on the next save). Saving writes a
// temporary file and renames it, so a crash mid-write never leaves a torn cache.
#pragma once

#include <filesystem>
#include <optional>

#include "runtime/device_caps.hpp"
#include "runtime/vk.hpp"

namespace kwaai::runtime::detail {

class PipelineCache {
 public:
  PipelineCache(VkDevice device, const DeviceCaps& caps, std::optional<std::filesystem::path> dir);
  ~PipelineCache();
  PipelineCache(const PipelineCache&) = delete;
  PipelineCache& operator=(const PipelineCache&) = delete;

  VkPipelineCache handle() const { return cache_; }
  const std::optional<std::filesystem::path>& file() const { return file_; }
  bool loaded() const { return loaded_; }
  // Writes the file (no-op without a directory); errors are logged, not thrown: a cache that
  // cannot be written only costs compile time next start.
  void save() const;

 private:
  VkDevice device_;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  std::optional<std::filesystem::path> file_;
  bool loaded_ = false;
};

}  // namespace kwaai::runtime::detail
