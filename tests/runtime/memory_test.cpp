// The sub-allocator: alignment, reuse of freed ranges, block sharing, exhaustion errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "tests/runtime/vulkan_fixture.hpp"

namespace kwaai::runtime {
namespace {

using test::VulkanTest;

TEST_F(VulkanTest, AllocationsAreAlignedAndDisjoint) {
  const std::uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<Allocation> live;
  for (int i = 0; i < 64; ++i) live.push_back(ctx().alloc_device(1 + rng() % 100000));
  const VkDeviceSize align = ctx().allocator().alignment();
  EXPECT_EQ(align % ctx().caps().min_storage_buffer_offset_alignment, 0u);
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(live[i].offset() % align, 0u);
    for (std::size_t j = i + 1; j < live.size(); ++j) {
      if (live[i].buffer() != live[j].buffer()) continue;
      const bool disjoint = live[i].offset() + live[i].size() <= live[j].offset() ||
                            live[j].offset() + live[j].size() <= live[i].offset();
      EXPECT_TRUE(disjoint) << i << " and " << j;
    }
  }
  // 64 small tensors share blocks instead of taking one VkDeviceMemory each.
  EXPECT_LE(ctx().memory_stats().block_count, 2u);
  EXPECT_EQ(ctx().memory_stats().allocation_count, 64u);
}

TEST_F(VulkanTest, FreedRangesAreReusedAndNeighboursMerge) {
  Allocation a = ctx().alloc_device(1000);
  Allocation b = ctx().alloc_device(1000);
  Allocation c = ctx().alloc_device(1000);
  const VkBuffer buffer = a.buffer();
  const VkDeviceSize a_off = a.offset();
  const auto blocks = ctx().memory_stats().block_count;
  a.reset();
  b.reset();                                // merges with a's range
  Allocation d = ctx().alloc_device(1900);  // fits only in the merged a+b range
  EXPECT_EQ(d.buffer(), buffer);
  EXPECT_EQ(d.offset(), a_off);
  EXPECT_EQ(ctx().memory_stats().block_count, blocks);
  const auto used = ctx().memory_stats().used_bytes;
  d.reset();
  c.reset();
  EXPECT_LT(ctx().memory_stats().used_bytes, used);
  EXPECT_EQ(ctx().memory_stats().used_bytes, 0u);
  EXPECT_EQ(ctx().memory_stats().allocation_count, 0u);
  ctx().allocator().trim();
  EXPECT_EQ(ctx().memory_stats().block_count, 0u);
}

TEST_F(VulkanTest, MovedAllocationFreesOnce) {
  Allocation a = ctx().alloc_device(256);
  Allocation b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
  Allocation c;
  c = std::move(b);
  EXPECT_EQ(ctx().memory_stats().allocation_count, 1u);
  c.reset();
  EXPECT_EQ(ctx().memory_stats().allocation_count, 0u);
}

TEST_F(VulkanTest, HostVisibleAllocationsAreMapped) {
  Allocation up = ctx().alloc_upload(4096);
  Allocation rb = ctx().alloc_readback(4096);
  Allocation dev = ctx().alloc_device(4096);
  ASSERT_NE(up.mapped(), nullptr);
  ASSERT_NE(rb.mapped(), nullptr);
  EXPECT_EQ(dev.mapped(), nullptr);
  std::fill(up.mapped(), up.mapped() + 4096, std::byte{7});  // writable
  EXPECT_EQ(up.usage(), MemoryUsage::Upload);
}

TEST_F(VulkanTest, ZeroByteAndImpossibleRequestsThrow) {
  EXPECT_THROW(ctx().alloc_device(0), std::invalid_argument);
  const VkDeviceSize too_big = ctx().caps().max_memory_allocation_size + 1;
  EXPECT_THROW(ctx().alloc_device(too_big), OutOfDeviceMemory);
}

TEST(Memory, BudgetExhaustionThrowsAndRecoversAfterFree) {
  ContextOptions o = test::test_options();
  o.block_bytes = 1 << 20;
  o.memory_budget_bytes = 2 << 20;  // two blocks
  Context ctx = Context::create(o);
  auto log = ctx.validation_log();
  std::vector<Allocation> live;
  for (int i = 0; i < 8; ++i) live.push_back(ctx.alloc_device(256 << 10));  // fills both
  EXPECT_EQ(ctx.memory_stats().block_count, 2u);
  try {
    (void)ctx.alloc_device(256 << 10);
    FAIL() << "expected OutOfDeviceMemory";
  } catch (const OutOfDeviceMemory& e) {
    EXPECT_NE(std::string(e.what()).find("budget"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ctx.alloc_device(1536 << 10), OutOfDeviceMemory);  // a dedicated block too
  live.pop_back();
  Allocation again = ctx.alloc_device(256 << 10);  // the freed range comes back
  EXPECT_TRUE(again);
  EXPECT_EQ(ctx.memory_stats().block_count, 2u);
  live.clear();
  again.reset();
  { Context gone = std::move(ctx); }
  test::expect_no_validation_messages(*log);
}

}  // namespace
}  // namespace kwaai::runtime
