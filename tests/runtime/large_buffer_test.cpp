// A tensor larger than maxStorageBufferRange (lavapipe: 128 MiB): allocated whole, processed by
// binding windows; binding it whole is refused.
#include <gtest/gtest.h>

#include <bit>
#include <vector>

#include "tests/runtime/vulkan_fixture.hpp"

namespace kwaai::runtime {
namespace {

using test::VulkanTest;

struct ScalePush {
  std::uint32_t n;
  float a, b;
  std::uint32_t pad = 0;
};

TEST_F(VulkanTest, TensorLargerThanMaxStorageBufferRangeWorksThroughWindows) {
  const VkDeviceSize range = ctx().max_binding_range();
  // Just over the limit, rounded to whole rows of 1000 floats, so windows hold whole rows.
  const VkDeviceSize row = 1000 * 4;
  const VkDeviceSize bytes = (range + (range / 8)) / row * row;
  ASSERT_GT(bytes, range);
  const std::uint64_t n = bytes / 4;

  Allocation x = ctx().alloc_device(bytes);
  Allocation y = ctx().alloc_device(bytes);
  const auto xw = ctx().binding_windows(x.ref(), row);
  const auto yw = ctx().binding_windows(y.ref(), row);
  ASSERT_EQ(xw.size(), 2u);
  ASSERT_EQ(yw.size(), xw.size());
  VkDeviceSize covered = 0;
  for (const auto& w : xw) {
    EXPECT_LE(w.size, range);
    EXPECT_EQ(w.offset % ctx().binding_alignment(), 0u);
    EXPECT_EQ((w.offset - x.offset()) % row, 0u);
    covered += w.size;
  }
  EXPECT_EQ(covered, bytes);

  Pipeline& p = ctx().pipeline("scale_f32");
  Stream s(ctx());
  s.fill(x.ref(), std::bit_cast<std::uint32_t>(1.0f));
  // Binding the whole tensor would exceed the limit: refused, not silently truncated.
  const ScalePush whole{std::uint32_t(n), 1.0f, 0.0f};
  EXPECT_THROW(s.dispatch(p, {{x.ref(), Access::Read}, {y.ref(), Access::Write}}, push_bytes(whole),
                          1, 1, 1),
               std::length_error);
  for (std::size_t w = 0; w < xw.size(); ++w) {
    // y = 2x + w, so each element tells which window wrote it.
    const ScalePush push{std::uint32_t(xw[w].size / 4), 2.0f, float(w)};
    s.dispatch(p, {{xw[w], Access::Read}, {yw[w], Access::Write}}, push_bytes(push), 4096, 1, 1);
  }
  // Read back only around the ends and the window boundary, to keep the test quick.
  const VkDeviceSize probe = 4096;
  const VkDeviceSize boundary = yw[1].offset - y.offset();
  std::vector<float> head(probe / 4), mid(2 * probe / 4), tail(probe / 4);
  s.download(y.ref().slice(0, probe), std::as_writable_bytes(std::span(head)));
  s.download(y.ref().slice(boundary - probe, 2 * probe), std::as_writable_bytes(std::span(mid)));
  s.download(y.ref().slice(bytes - probe, probe), std::as_writable_bytes(std::span(tail)));
  s.submit_and_wait();
  // x = 1 everywhere, so window 0 holds 2*1+0 and window 1 holds 2*1+1.
  EXPECT_EQ(head.front(), 2.0f);
  EXPECT_EQ(mid[probe / 4 - 1], 2.0f);  // last element of window 0
  EXPECT_EQ(mid[probe / 4], 3.0f);      // first element of window 1
  EXPECT_EQ(tail.back(), 3.0f);
  for (float v : head) ASSERT_EQ(v, 2.0f);
  for (float v : tail) ASSERT_EQ(v, 3.0f);
}

TEST_F(VulkanTest, BindingWindowsRejectBadInput) {
  Allocation x = ctx().alloc_device(1024);
  EXPECT_EQ(ctx().binding_windows(x.ref(), 4).size(), 1u);
  EXPECT_THROW(ctx().binding_windows(x.ref(), 0), std::invalid_argument);
  EXPECT_THROW(ctx().binding_windows(x.ref().slice(4, 64), 4), std::invalid_argument);
}

}  // namespace
}  // namespace kwaai::runtime
