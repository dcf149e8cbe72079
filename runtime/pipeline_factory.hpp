// Internal: builds a Pipeline from a KernelInfo after checking the host/shader contract.
#pragma once

#include <memory>
#include <span>

#include "kernels/kernel_table.hpp"
#include "runtime/device_caps.hpp"
#include "runtime/pipeline.hpp"

namespace kwaai::runtime {

class PipelineFactory {
 public:
  static std::unique_ptr<Pipeline> create(VkDevice device, VkPipelineCache cache,
                                          const DeviceCaps& caps, const kernels::KernelInfo& k,
                                          std::span<const SpecConstant> spec);
};

}  // namespace kwaai::runtime
