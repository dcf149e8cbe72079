// Internal: what a Context owns. Streams reach the device, queue and submit lock through it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/context.hpp"
#include "runtime/instance.hpp"
#include "runtime/pipeline_cache.hpp"

namespace kwaai::runtime {

struct Context::Impl {
  ContextOptions opts;
  std::unique_ptr<detail::Instance> instance;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  DeviceCaps caps;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  std::uint32_t queue_family = 0;
  std::unique_ptr<Allocator> allocator;
  std::unique_ptr<detail::PipelineCache> cache;
  std::mutex pipelines_mu;
  std::map<std::string, std::unique_ptr<Pipeline>> pipelines;  // key: name + spec constants
  std::mutex submit_mu;  // vkQueueSubmit needs external synchronisation of the queue

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();
};

}  // namespace kwaai::runtime
