// The barrier derivation rules, without a device: which command pairs need a barrier and
// what scopes it gets.
#include "runtime/barrier_tracker.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace kwaai::runtime::detail {
namespace {

// Fake, distinct buffer handles (the tracker only compares them).
VkBuffer buf(std::uintptr_t i) {
  return reinterpret_cast<VkBuffer>(i * 16);
}

AccessDecl rd(VkBuffer b, VkDeviceSize lo, VkDeviceSize hi, StageKind s = StageKind::Compute) {
  return {b, lo, hi, false, s};
}
AccessDecl wr(VkBuffer b, VkDeviceSize lo, VkDeviceSize hi, StageKind s = StageKind::Compute) {
  return {b, lo, hi, true, s};
}

constexpr VkPipelineStageFlags kAllStages =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
constexpr VkAccessFlags kAllAccess = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;

std::optional<Barrier> add(BarrierTracker& t, std::vector<AccessDecl> a) {
  return t.add(a);
}

TEST(BarrierTracker, ReadAfterWriteOnOverlapNeedsBarrier) {
  BarrierTracker t;
  EXPECT_FALSE(add(t, {rd(buf(1), 0, 64), wr(buf(2), 0, 64)}));
  auto b = add(t, {rd(buf(2), 32, 96), wr(buf(3), 0, 64)});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->src_stages, VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT));
  EXPECT_EQ(b->src_access, VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT));
  EXPECT_EQ(b->dst_stages, kAllStages);
  EXPECT_EQ(b->dst_access, kAllAccess);
}

TEST(BarrierTracker, WriteAfterReadNeedsBarrier) {
  BarrierTracker t;
  EXPECT_FALSE(add(t, {rd(buf(1), 0, 64), wr(buf(2), 0, 64)}));
  auto b = add(t, {wr(buf(1), 60, 61, StageKind::Transfer)});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->dst_stages, kAllStages);
  EXPECT_EQ(b->dst_access, kAllAccess);
}

TEST(BarrierTracker, WriteAfterWriteNeedsBarrier) {
  BarrierTracker t;
  EXPECT_FALSE(add(t, {wr(buf(1), 0, 16, StageKind::Transfer)}));
  auto b = add(t, {wr(buf(1), 8, 24)});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->src_stages, VkPipelineStageFlags(VK_PIPELINE_STAGE_TRANSFER_BIT));
  EXPECT_EQ(b->src_access, VkAccessFlags(VK_ACCESS_TRANSFER_WRITE_BIT));
  EXPECT_EQ(b->dst_stages, kAllStages);
}

// Regression: compute writes A, a compute pass reading A triggers the barrier, then a transfer
// (download) reads A. The transfer gets no barrier of its own, so the first one must already
// make A's write visible to the transfer stage.
TEST(BarrierTracker, LaterCommandOfOtherKindIsCoveredByEarlierBarrier) {
  BarrierTracker t;
  EXPECT_FALSE(add(t, {wr(buf(1), 0, 64)}));
  auto b = add(t, {rd(buf(1), 0, 64), wr(buf(2), 0, 64)});
  ASSERT_TRUE(b);
  EXPECT_FALSE(add(t, {rd(buf(1), 0, 64, StageKind::Transfer)}));
  EXPECT_TRUE(b->dst_stages & VK_PIPELINE_STAGE_TRANSFER_BIT);
  EXPECT_TRUE(b->dst_access & VK_ACCESS_TRANSFER_READ_BIT);
}

TEST(BarrierTracker, DisjointRangesReadsAndOtherBuffersNeedNone) {
  BarrierTracker t;
  EXPECT_FALSE(add(t, {wr(buf(1), 0, 64)}));
  EXPECT_FALSE(add(t, {wr(buf(1), 64, 128)}));  // adjacent, not overlapping
  EXPECT_FALSE(add(t, {rd(buf(2), 0, 64)}));
  EXPECT_FALSE(add(t, {rd(buf(2), 0, 64)}));  // read after read
  EXPECT_FALSE(add(t, {wr(buf(3), 0, 64)}));  // same range, other buffer
}

TEST(BarrierTracker, BarrierCoversEverythingPendingThenStartsOver) {
  BarrierTracker t;
  EXPECT_FALSE(add(t, {wr(buf(1), 0, 64, StageKind::Transfer)}));
  EXPECT_FALSE(add(t, {wr(buf(2), 0, 64)}));
  auto b = add(t, {rd(buf(1), 0, 4)});
  ASSERT_TRUE(b);
  // Both the transfer and the compute write were pending: both are in the first scope.
  EXPECT_EQ(b->src_stages, VkPipelineStageFlags(VK_PIPELINE_STAGE_TRANSFER_BIT |
                                                VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT));
  EXPECT_EQ(b->src_access,
            VkAccessFlags(VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT));
  // The write to buffer 2 is ordered by that barrier: reading it now needs no new one.
  EXPECT_FALSE(add(t, {rd(buf(2), 0, 64)}));
  // The read of buffer 1 after the barrier is pending: overwriting it needs one.
  EXPECT_TRUE(add(t, {wr(buf(1), 0, 4)}));
}

TEST(BarrierTracker, ResetForgetsPending) {
  BarrierTracker t;
  EXPECT_FALSE(add(t, {wr(buf(1), 0, 64)}));
  t.reset();
  EXPECT_FALSE(add(t, {rd(buf(1), 0, 64)}));
}

}  // namespace
}  // namespace kwaai::runtime::detail
