// A compute pipeline for one kernel variant + specialization constants. Created (and cached
// per (kernel, spec constants)) by Context::pipeline(); owned by the Context.
//
// Contract checked at creation (std::invalid_argument naming the kernel otherwise): the
// SPIR-V module's storage-buffer bindings and push-constant block agree with the KernelInfo,
// spec constant ids exist in the module, and the resulting workgroup size is within
// maxComputeWorkGroupSize / maxComputeWorkGroupInvocations.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/vk.hpp"

namespace kwaai::runtime {

// One 32-bit specialization constant (int, uint, float bits or bool as 0/1).
struct SpecConstant {
  std::uint32_t id = 0;
  std::uint32_t value = 0;
  static SpecConstant u32(std::uint32_t id, std::uint32_t v) { return {id, v}; }
  static SpecConstant f32(std::uint32_t id, float v);
  bool operator==(const SpecConstant&) const = default;
};

class Pipeline {
 public:
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  ~Pipeline();

  const std::string& name() const { return name_; }  // kernel variant name
  std::uint32_t binding_count() const { return binding_count_; }
  std::uint32_t push_constant_bytes() const { return push_bytes_; }
  // Effective local size after specialization (x, y, z).
  const std::array<std::uint32_t, 3>& local_size() const { return local_size_; }
  VkPipeline handle() const { return pipeline_; }
  VkPipelineLayout layout() const { return layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }

 private:
  friend class PipelineFactory;
  Pipeline() = default;
  VkDevice device_ = VK_NULL_HANDLE;
  std::string name_;
  std::uint32_t binding_count_ = 0;
  std::uint32_t push_bytes_ = 0;
  std::array<std::uint32_t, 3> local_size_{1, 1, 1};
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipeline pipeline_ = VK_NULL_HANDLE;
};

}  // namespace kwaai::runtime
