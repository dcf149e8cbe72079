#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/pipeline_factory.hpp"
#include "runtime/spirv_reflect.hpp"

namespace kwaai::runtime {

SpecConstant SpecConstant::f32(std::uint32_t id, float v) {
  return {id, std::bit_cast<std::uint32_t>(v)};
}

Pipeline::~Pipeline() {
  if (pipeline_) vkDestroyPipeline(device_, pipeline_, nullptr);
  if (layout_) vkDestroyPipelineLayout(device_, layout_, nullptr);
  if (set_layout_) vkDestroyDescriptorSetLayout(device_, set_layout_, nullptr);
}

std::unique_ptr<Pipeline> PipelineFactory::create(VkDevice device, VkPipelineCache cache,
                                                  const DeviceCaps& caps,
                                                  const kernels::KernelInfo& k,
                                                  std::span<const SpecConstant> spec) {
  const std::string name(k.name);
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("runtime: kernel '" + name + "': " + why);
  };

  // The module must agree with what the table promises the host will bind and push.
  const SpirvInfo info = reflect_spirv(k.spirv);
  std::uint32_t expect = 0;
  for (const auto& b : info.bindings) {
    if (b.set != 0) fail("uses descriptor set " + std::to_string(b.set) + "; only set 0 is bound");
    if (b.binding != expect)
      fail("bindings are not 0..n-1 (found binding " + std::to_string(b.binding) + ")");
    ++expect;
  }
  if (expect != k.binding_count)
    fail("the module declares " + std::to_string(expect) + " bindings, the table says " +
         std::to_string(k.binding_count));
  if (info.push_constant_bytes != k.push_constant_bytes)
    fail("the module's push-constant block is " + std::to_string(info.push_constant_bytes) +
         " bytes, the table says " + std::to_string(k.push_constant_bytes));
  if (k.push_constant_bytes > caps.max_push_constants_size)
    throw std::length_error(
        "runtime: kernel '" + name + "' pushes " + std::to_string(k.push_constant_bytes) +
        " bytes > maxPushConstantsSize " + std::to_string(caps.max_push_constants_size));

  std::array<std::uint32_t, 3> local = info.local_size;
  for (const auto& s : spec) {
    if (!std::binary_search(info.spec_constant_ids.begin(), info.spec_constant_ids.end(), s.id))
      fail("has no specialization constant with id " + std::to_string(s.id));
    for (int d = 0; d < 3; ++d)
      if (info.local_size_spec_id[d] == s.id) local[d] = s.value;
  }
  std::uint64_t invocations = 1;
  for (int d = 0; d < 3; ++d) {
    if (local[d] == 0 || local[d] > caps.max_compute_work_group_size[d])
      throw std::length_error("runtime: kernel '" + name + "' local size[" + std::to_string(d) +
                              "] = " + std::to_string(local[d]) +
                              " outside 1..maxComputeWorkGroupSize " +
                              std::to_string(caps.max_compute_work_group_size[d]));
    invocations *= local[d];
  }
  if (invocations > caps.max_compute_work_group_invocations)
    throw std::length_error("runtime: kernel '" + name + "' has " + std::to_string(invocations) +
                            " invocations per workgroup > maxComputeWorkGroupInvocations " +
                            std::to_string(caps.max_compute_work_group_invocations));

  std::unique_ptr<Pipeline> p(new Pipeline());
  p->device_ = device;
  p->name_ = name;
  p->binding_count_ = k.binding_count;
  p->push_bytes_ = k.push_constant_bytes;
  p->local_size_ = local;

  std::vector<VkDescriptorSetLayoutBinding> binds(k.binding_count);
  for (std::uint32_t i = 0; i < k.binding_count; ++i) {
    binds[i].binding = i;
    binds[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    binds[i].descriptorCount = 1;
    binds[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo dl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dl.bindingCount = k.binding_count;
  dl.pBindings = binds.data();
  KWAAI_VK_CHECK(vkCreateDescriptorSetLayout(device, &dl, nullptr, &p->set_layout_));

  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, k.push_constant_bytes};
  VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pl.setLayoutCount = 1;
  pl.pSetLayouts = &p->set_layout_;
  pl.pushConstantRangeCount = k.push_constant_bytes ? 1 : 0;
  pl.pPushConstantRanges = &range;
  KWAAI_VK_CHECK(vkCreatePipelineLayout(device, &pl, nullptr, &p->layout_));

  VkShaderModuleCreateInfo sm{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  sm.codeSize = k.spirv.size_bytes();
  sm.pCode = k.spirv.data();
  VkShaderModule module = VK_NULL_HANDLE;
  KWAAI_VK_CHECK(vkCreateShaderModule(device, &sm, nullptr, &module));

  std::vector<VkSpecializationMapEntry> entries;
  std::vector<std::uint32_t> values;
  for (const auto& s : spec) {
    entries.push_back({s.id, static_cast<std::uint32_t>(values.size() * 4), 4});
    values.push_back(s.value);
  }
  VkSpecializationInfo si{static_cast<std::uint32_t>(entries.size()), entries.data(),
                          values.size() * 4, values.data()};
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = module;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = entries.empty() ? nullptr : &si;
  ci.layout = p->layout_;
  const VkResult r = vkCreateComputePipelines(device, cache, 1, &ci, nullptr, &p->pipeline_);
  vkDestroyShaderModule(device, module, nullptr);
  KWAAI_VK_CHECK(r);
  return p;
}

}  // namespace kwaai::runtime
