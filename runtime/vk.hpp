// The Vulkan API as the rest of the project sees it. libvulkan.so.1 is opened at run time
// (dlopen) instead of being linked, so a machine without a Vulkan loader still runs the CPU
// paths and gets a clear runtime::NoVulkanDevice instead of failing to start.
//
// Every Vulkan entry point the project uses is a global function pointer with the usual name
// (vkCmdDispatch, ...), filled in by load_vulkan_*(); include this header instead of
// <vulkan/vulkan.h> (VK_NO_PROTOTYPES is set for every target that links kwaai_runtime).
// Context::create() loads everything; code holding a Context can call vk* freely. A function
// missing from the list below is added to KWAAI_VK_*_FUNCTIONS (additive change).
#pragma once

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#define KWAAI_VK_GLOBAL_FUNCTIONS(X)        \
  X(vkCreateInstance)                       \
  X(vkEnumerateInstanceExtensionProperties) \
  X(vkEnumerateInstanceLayerProperties)     \
  X(vkEnumerateInstanceVersion)

#define KWAAI_VK_INSTANCE_FUNCTIONS(X)        \
  X(vkDestroyInstance)                        \
  X(vkEnumeratePhysicalDevices)               \
  X(vkGetPhysicalDeviceProperties)            \
  X(vkGetPhysicalDeviceProperties2)           \
  X(vkGetPhysicalDeviceFeatures2)             \
  X(vkGetPhysicalDeviceMemoryProperties)      \
  X(vkGetPhysicalDeviceQueueFamilyProperties) \
  X(vkEnumerateDeviceExtensionProperties)     \
  X(vkCreateDevice)                           \
  X(vkGetDeviceProcAddr)

// Extension entry points: may stay null (checked before use).
#define KWAAI_VK_INSTANCE_EXT_FUNCTIONS(X) \
  X(vkCreateDebugUtilsMessengerEXT)        \
  X(vkDestroyDebugUtilsMessengerEXT)

#define KWAAI_VK_DEVICE_FUNCTIONS(X) \
  X(vkDestroyDevice)                 \
  X(vkGetDeviceQueue)                \
  X(vkDeviceWaitIdle)                \
  X(vkQueueSubmit)                   \
  X(vkQueueWaitIdle)                 \
  X(vkAllocateMemory)                \
  X(vkFreeMemory)                    \
  X(vkMapMemory)                     \
  X(vkUnmapMemory)                   \
  X(vkFlushMappedMemoryRanges)       \
  X(vkInvalidateMappedMemoryRanges)  \
  X(vkCreateBuffer)                  \
  X(vkDestroyBuffer)                 \
  X(vkGetBufferMemoryRequirements)   \
  X(vkBindBufferMemory)              \
  X(vkCreateShaderModule)            \
  X(vkDestroyShaderModule)           \
  X(vkCreatePipelineCache)           \
  X(vkDestroyPipelineCache)          \
  X(vkGetPipelineCacheData)          \
  X(vkCreateComputePipelines)        \
  X(vkDestroyPipeline)               \
  X(vkCreatePipelineLayout)          \
  X(vkDestroyPipelineLayout)         \
  X(vkCreateDescriptorSetLayout)     \
  X(vkDestroyDescriptorSetLayout)    \
  X(vkCreateDescriptorPool)          \
  X(vkDestroyDescriptorPool)         \
  X(vkResetDescriptorPool)           \
  X(vkAllocateDescriptorSets)        \
  X(vkUpdateDescriptorSets)          \
  X(vkCreateCommandPool)             \
  X(vkDestroyCommandPool)            \
  X(vkResetCommandPool)              \
  X(vkAllocateCommandBuffers)        \
  X(vkFreeCommandBuffers)            \
  X(vkBeginCommandBuffer)            \
  X(vkEndCommandBuffer)              \
  X(vkCmdBindPipeline)               \
  X(vkCmdBindDescriptorSets)         \
  X(vkCmdPushConstants)              \
  X(vkCmdDispatch)                   \
  X(vkCmdCopyBuffer)                 \
  X(vkCmdFillBuffer)                 \
  X(vkCmdUpdateBuffer)               \
  X(vkCmdPipelineBarrier)            \
  X(vkCmdWriteTimestamp)             \
  X(vkCmdResetQueryPool)             \
  X(vkCreateFence)                   \
  X(vkDestroyFence)                  \
  X(vkWaitForFences)                 \
  X(vkResetFences)                   \
  X(vkCreateQueryPool)               \
  X(vkDestroyQueryPool)              \
  X(vkGetQueryPoolResults)

#define KWAAI_VK_DECLARE(name) extern PFN_##name name;
KWAAI_VK_GLOBAL_FUNCTIONS(KWAAI_VK_DECLARE)
KWAAI_VK_INSTANCE_FUNCTIONS(KWAAI_VK_DECLARE)
KWAAI_VK_INSTANCE_EXT_FUNCTIONS(KWAAI_VK_DECLARE)
KWAAI_VK_DEVICE_FUNCTIONS(KWAAI_VK_DECLARE)
#undef KWAAI_VK_DECLARE

namespace kwaai::runtime {

// Opens libvulkan.so.1 once and loads the global entry points. Returns false (and leaves a
// reason in *why) when there is no loader; never throws. Thread-safe, idempotent.
bool load_vulkan_loader(const char** why = nullptr);
// Instance-level and device-level entry points through vkGetInstanceProcAddr(instance).
// The project uses one instance per Context; entry points from the loader dispatch on the
// handle, so re-loading for a second instance is harmless.
void load_vulkan_instance(VkInstance instance);

}  // namespace kwaai::runtime
