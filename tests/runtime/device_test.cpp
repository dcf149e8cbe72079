// Enumeration, capabilities and context creation.
#include <gtest/gtest.h>

#include "tests/runtime/vulkan_fixture.hpp"

namespace kwaai::runtime {
namespace {

TEST(Devices, EnumerationListsACpuDeviceWithSaneCaps) {
  const auto devs = Context::enumerate();
  ASSERT_FALSE(devs.empty());
  bool found_cpu = false;
  for (std::size_t i = 0; i < devs.size(); ++i) {
    const DeviceCaps& c = devs[i];
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.index, i);
    EXPECT_FALSE(c.name.empty());
    EXPECT_FALSE(c.heaps.empty());
    EXPECT_FALSE(c.memory_types.empty());
    for (const auto& t : c.memory_types) EXPECT_LT(t.heap_index, c.heaps.size());
    EXPECT_GE(c.max_storage_buffer_range, 1u << 27) << "Vulkan guarantees 128 MiB";
    EXPECT_GE(c.max_compute_work_group_invocations, 128u);
    EXPECT_GE(c.max_compute_shared_memory_size, 16384u);
    EXPECT_GE(c.max_push_constants_size, 128u);
    EXPECT_GT(c.max_memory_allocation_size, 0u);
    EXPECT_GT(c.min_storage_buffer_offset_alignment, 0u);
    EXPECT_EQ(c.min_storage_buffer_offset_alignment & (c.min_storage_buffer_offset_alignment - 1),
              0u);
    for (int d = 0; d < 3; ++d) EXPECT_GT(c.max_compute_work_group_count[d], 0u);
    EXPECT_EQ(c.api_version_string().front(), '1');
    if (c.is_cpu_device) {
      found_cpu = true;
      EXPECT_EQ(c.type, DeviceType::Cpu);
    }
    if (c.is_lavapipe) {
      // What the kernels rely on from lavapipe in CI.
      EXPECT_TRUE(c.storage_buffer_16bit);
      EXPECT_TRUE(c.subgroup_arithmetic());
      EXPECT_GT(c.subgroup_size, 0u);
      EXPECT_TRUE(c.timestamps_supported);
      EXPECT_EQ(c.driver_name, "llvmpipe");
    }
  }
  EXPECT_TRUE(found_cpu) << "CI runs on lavapipe, a CPU-type device";
}

TEST(Devices, OutOfRangeDeviceIndexThrowsNoVulkanDevice) {
  ContextOptions o;
  o.device_index = 1000;
  EXPECT_THROW(Context::create(o), NoVulkanDevice);
}

TEST(Devices, ContextReportsTheChosenDeviceAndLoadsNoForeignCache) {
  const ContextOptions o = test::test_options();
  Context ctx = Context::create(o);
  auto log = ctx.validation_log();
  EXPECT_EQ(ctx.caps().index, o.device_index);
  EXPECT_NE(ctx.device(), VK_NULL_HANDLE);
  EXPECT_NE(ctx.queue(), VK_NULL_HANDLE);
  EXPECT_FALSE(ctx.pipeline_cache_file().has_value());
  EXPECT_FALSE(ctx.pipeline_cache_loaded());
  Context moved = std::move(ctx);  // pimpl: moving keeps the device usable
  EXPECT_NE(moved.device(), VK_NULL_HANDLE);
  { Context gone = std::move(moved); }
  test::expect_no_validation_messages(*log);
}

TEST(Devices, ValidationLogCountsAnInvalidCall) {
  // Proves the zero-message assertions in the other tests can fail: a buffer of size 0 is
  // invalid usage (VUID-VkBufferCreateInfo-size-00912) that the layer must report.
  Context ctx = Context::create(test::test_options());
  VkBufferCreateInfo bi{};
  bi.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  bi.size = 0;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
  VkBuffer b = VK_NULL_HANDLE;
  const VkResult r = vkCreateBuffer(ctx.device(), &bi, nullptr, &b);
  if (r == VK_SUCCESS && b) vkDestroyBuffer(ctx.device(), b, nullptr);
  EXPECT_GE(ctx.validation_message_count(), 1u);
  ASSERT_FALSE(ctx.validation_messages().empty());
  EXPECT_NE(ctx.validation_messages()[0].find("size"), std::string::npos);
  ctx.clear_validation_messages();
  EXPECT_EQ(ctx.validation_message_count(), 0u);
}

}  // namespace
}  // namespace kwaai::runtime
