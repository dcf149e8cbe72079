// Recording and running work: upload -> kernel -> download, chains of dependent commands in
// one command buffer (derived barriers), reductions, the dispatch contract, timestamps.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <numeric>
#include <random>
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

std::vector<float> random_floats(std::mt19937& rng, std::size_t n) {
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void scale(Stream& s, Pipeline& p, BufferRef x, BufferRef y, std::uint32_t n, float a, float b) {
  const ScalePush push{n, a, b};
  const std::uint32_t groups = std::min<std::uint32_t>((n + 63) / 64, 1024);
  s.dispatch(p, {{x, Access::Read}, {y, Access::Write}}, push_bytes(push), groups, 1, 1, "scale");
}

std::vector<float> download_floats(Stream& s, BufferRef src, std::size_t n) {
  std::vector<float> out(n);
  s.download(src, std::as_writable_bytes(std::span(out)));
  s.submit_and_wait();
  return out;
}

TEST_F(VulkanTest, UploadScaleDownloadRoundTrip) {
  const std::uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::uint32_t n = 1000 + rng() % 5000;
  const auto x = random_floats(rng, n);
  Stream s(ctx());
  Allocation xd = upload_floats(s, x);
  Allocation yd = ctx().alloc_device(n * 4);
  scale(s, ctx().pipeline("scale_f32"), xd.ref(), yd.ref(), n, 1.5f, -0.25f);
  const auto y = download_floats(s, yd.ref(), n);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], 1.5f * x[i] - 0.25f, 1e-5f) << i;
  EXPECT_TRUE(s.empty());
}

// f32 -> f16 for values that f16 holds exactly (multiples of 1/8 below 256).
std::uint16_t to_half_exact(float f) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  if ((u & 0x7fffffffu) == 0) return static_cast<std::uint16_t>(sign);
  const int exp = int((u >> 23) & 0xff) - 127 + 15;
  const std::uint32_t mant = (u >> 13) & 0x3ffu;
  return static_cast<std::uint16_t>(sign | (std::uint32_t(exp) << 10) | mant);
}

TEST_F(VulkanTest, F16InputVariantReadsHalfStorage) {
  if (!ctx().supports(kernels::kernel("scale_f16_f32"))) GTEST_SKIP() << "no 16-bit storage";
  const std::uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::uint32_t n = 777;
  std::vector<float> x(n);
  std::vector<std::uint16_t> h(n + 1);  // even element count: whole 32-bit words
  for (std::uint32_t i = 0; i < n; ++i) {
    x[i] = float(int(rng() % 2001) - 1000) / 8.0f;
    h[i] = to_half_exact(x[i]);
  }
  Stream s(ctx());
  Allocation xd = ctx().alloc_device(h.size() * 2);
  s.upload(xd.ref(), std::as_bytes(std::span(h)));
  Allocation yd = ctx().alloc_device(n * 4);
  scale(s, ctx().pipeline("scale_f16_f32"), xd.ref(), yd.ref(), n, 2.0f, 1.0f);
  const auto y = download_floats(s, yd.ref(), n);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 2.0f * x[i] + 1.0f) << i;
}

TEST_F(VulkanTest, DependentCommandsInOneSubmissionGetDerivedBarriers) {
  const std::uint32_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::uint32_t n = 4096;
  const auto x = random_floats(rng, n);
  const auto x2 = random_floats(rng, n);
  Pipeline& p = ctx().pipeline("scale_f32");
  Stream s(ctx());
  Allocation a = ctx().alloc_device(n * 4), b = ctx().alloc_device(n * 4),
             c = ctx().alloc_device(n * 4), d = ctx().alloc_device(n * 4),
             e = ctx().alloc_device(n * 4);
  std::vector<float> out_c(n), out_e(n);

  s.upload(a.ref(), std::as_bytes(std::span(x)));
  scale(s, p, a.ref(), b.ref(), n, 2.0f, 1.0f);  // RAW on a (transfer -> compute)
  const auto barriers_after_first = s.recorded_barriers();
  scale(s, p, b.ref(), c.ref(), n, 3.0f, 0.0f);     // RAW on b (compute -> compute)
  s.upload(b.ref(), std::as_bytes(std::span(x2)));  // WAR on b: must wait for the read above
  scale(s, p, b.ref(), d.ref(), n, 1.0f, 0.5f);     // RAW on b again
  s.copy(d.ref(), e.ref(), n * 4);                  // RAW on d (compute -> transfer)
  s.fill(a.ref(), 0);                               // WAR on a (first dispatch read it)
  s.download(c.ref(), std::as_writable_bytes(std::span(out_c)));
  s.download(e.ref(), std::as_writable_bytes(std::span(out_e)));
  EXPECT_EQ(barriers_after_first, 1u);
  EXPECT_GE(s.recorded_barriers(), 6u);
  EXPECT_EQ(s.recorded_commands(), 9u);
  s.submit_and_wait();

  for (std::uint32_t i = 0; i < n; ++i) {
    ASSERT_NEAR(out_c[i], 3.0f * (2.0f * x[i] + 1.0f), 1e-4f) << i;  // the old b
    ASSERT_NEAR(out_e[i], x2[i] + 0.5f, 1e-5f) << i;                 // the new b
  }
}

TEST_F(VulkanTest, IndependentDispatchesNeedNoBarrier) {
  const std::uint32_t n = 1024;
  std::vector<float> x(n, 1.0f);
  Pipeline& p = ctx().pipeline("scale_f32");
  Stream s(ctx());
  Allocation a = upload_floats(s, x);
  Allocation b = ctx().alloc_device(n * 4), c = ctx().alloc_device(n * 4);
  scale(s, p, a.ref(), b.ref(), n, 2.0f, 0.0f);
  const auto before = s.recorded_barriers();
  scale(s, p, a.ref(), c.ref(), n, 3.0f, 0.0f);  // reads a again, writes elsewhere
  EXPECT_EQ(s.recorded_barriers(), before);
  const auto yc = download_floats(s, c.ref(), n);
  EXPECT_EQ(yc[0], 3.0f);
  EXPECT_EQ(yc[n - 1], 3.0f);
}

TEST_F(VulkanTest, StreamIsReusableAcrossManySubmissions) {
  const std::uint32_t n = 256;
  Pipeline& p = ctx().pipeline("scale_f32");
  Stream s(ctx());
  Allocation a = ctx().alloc_device(n * 4), b = ctx().alloc_device(n * 4);
  std::vector<float> x(n);
  for (int round = 0; round < 5; ++round) {
    std::iota(x.begin(), x.end(), float(round));
    s.upload(a.ref(), std::as_bytes(std::span(x)));
    // More dispatches than one descriptor pool holds, to make the pools grow.
    for (int k = 0; k < 300; ++k) scale(s, p, a.ref(), b.ref(), n, 1.0f, float(k));
    const auto y = download_floats(s, b.ref(), n);
    ASSERT_EQ(y[5], float(round) + 5.0f + 299.0f) << "round " << round;
  }
}

struct ReducePush {
  std::uint32_t n, per_group;
};

void check_reduction(Context& ctx, const char* kernel, std::uint32_t local) {
  const std::uint32_t seed = test::fresh_seed();
  SCOPED_TRACE(std::string(kernel) + " local " + std::to_string(local) + " seed " +
               std::to_string(seed));
  std::mt19937 rng(seed);
  const std::uint32_t n = 10000 + rng() % 1000, per_group = 1024;
  const std::uint32_t groups = (n + per_group - 1) / per_group;
  const auto x = random_floats(rng, n);
  const SpecConstant spec[] = {SpecConstant::u32(0, local)};
  Pipeline& p = ctx.pipeline(kernel, spec);
  EXPECT_EQ(p.local_size()[0], local);
  Stream s(ctx);
  Allocation xd = ctx.alloc_device(n * 4), pd = ctx.alloc_device(groups * 4);
  s.upload(xd.ref(), std::as_bytes(std::span(x)));
  const ReducePush push{n, per_group};
  s.dispatch(p, {{xd.ref(), Access::Read}, {pd.ref(), Access::Write}}, push_bytes(push), groups, 1,
             1);
  std::vector<float> partial(groups);
  s.download(pd.ref(), std::as_writable_bytes(std::span(partial)));
  s.submit_and_wait();
  for (std::uint32_t g = 0; g < groups; ++g) {
    double want = 0;
    for (std::uint32_t i = g * per_group; i < std::min(n, (g + 1) * per_group); ++i) want += x[i];
    ASSERT_NEAR(partial[g], want, 1e-3) << "group " << g;
  }
}

TEST_F(VulkanTest, WorkgroupReductionsWithAndWithoutSubgroups) {
  for (std::uint32_t local : {64u, 100u, 256u}) check_reduction(ctx(), "reduce_sum_f32", local);
  if (ctx().supports(kernels::kernel("reduce_sum_f32_subgroup")))
    for (std::uint32_t local : {64u, 96u, 256u})
      check_reduction(ctx(), "reduce_sum_f32_subgroup", local);
}

TEST_F(VulkanTest, DispatchContractViolationsThrowBeforeRecording) {
  Pipeline& p = ctx().pipeline("scale_f32");
  Stream s(ctx());
  Allocation a = ctx().alloc_device(1024), b = ctx().alloc_device(1024);
  const ScalePush push{256, 1.0f, 0.0f};
  EXPECT_THROW(s.dispatch(p, {{a.ref(), Access::Read}}, push_bytes(push), 1, 1, 1),
               std::invalid_argument);
  const std::uint32_t short_push[2] = {1, 2};
  EXPECT_THROW(s.dispatch(p, {{a.ref(), Access::Read}, {b.ref(), Access::Write}},
                          std::as_bytes(std::span(short_push)), 1, 1, 1),
               std::invalid_argument);
  EXPECT_THROW(
      s.dispatch(p, {{a.ref(), Access::Read}, {b.ref(), Access::Write}}, push_bytes(push), 0, 1, 1),
      std::length_error);
  EXPECT_THROW(s.dispatch(p, {{a.ref(), Access::Read}, {b.ref(), Access::Write}}, push_bytes(push),
                          ctx().caps().max_compute_work_group_count[0] + 1u, 1, 1),
               std::length_error);
  EXPECT_THROW(s.dispatch(p, {{a.ref().slice(4, 16), Access::Read}, {b.ref(), Access::Write}},
                          push_bytes(push), 1, 1, 1),
               std::length_error);  // misaligned binding offset
  EXPECT_THROW(s.upload(a.ref(), 1020, std::as_bytes(std::span(short_push)).subspan(0, 8)),
               std::out_of_range);
  EXPECT_THROW(s.fill(a.ref().slice(0, 10), 0), std::invalid_argument);  // not whole words
  EXPECT_THROW(s.copy(a.ref().slice(0, 512), a.ref().slice(256, 512), 512),
               std::invalid_argument);  // overlapping copy
  EXPECT_THROW(s.copy(a.ref(), b.ref().slice(0, 16), 1024), std::out_of_range);
  EXPECT_TRUE(s.empty());
  EXPECT_THROW(ctx().pipeline("no_such_kernel"), std::out_of_range);
  const SpecConstant bad_id[] = {SpecConstant::u32(7, 1)};
  EXPECT_THROW(ctx().pipeline("scale_f32", bad_id), std::invalid_argument);
  const SpecConstant too_wide[] = {SpecConstant::u32(0, 1u << 20)};
  EXPECT_THROW(ctx().pipeline("scale_f32", too_wide), std::length_error);
}

TEST_F(VulkanTest, StreamDestroyedWithUnsubmittedOrPendingWorkIsClean) {
  Pipeline& p = ctx().pipeline("scale_f32");
  Allocation a = ctx().alloc_device(4096), b = ctx().alloc_device(4096);
  const ScalePush push{1024, 1.0f, 0.0f};
  {
    Stream s(ctx());  // recorded, never submitted
    s.fill(a.ref(), 0);
    s.dispatch(p, {{a.ref(), Access::Read}, {b.ref(), Access::Write}}, push_bytes(push), 4, 1, 1);
  }
  {
    Stream s(ctx());  // submitted, never waited for: the destructor waits
    s.fill(a.ref(), 0);
    s.dispatch(p, {{a.ref(), Access::Read}, {b.ref(), Access::Write}}, push_bytes(push), 4, 1, 1);
    s.submit();
    EXPECT_FALSE(s.empty());
  }
  Stream s(ctx());
  s.fill(a.ref(), std::bit_cast<std::uint32_t>(5.0f));
  s.submit();
  // Recording after a submit waits for it first, so the data dependency still holds.
  s.dispatch(p, {{a.ref(), Access::Read}, {b.ref(), Access::Write}}, push_bytes(push), 4, 1, 1);
  const auto y = download_floats(s, b.ref(), 1024);
  EXPECT_EQ(y[0], 5.0f);
  EXPECT_EQ(y[1023], 5.0f);
}

TEST_F(VulkanTest, PipelinesAreCachedPerSpecConstants) {
  Pipeline& a = ctx().pipeline("scale_f32");
  Pipeline& b = ctx().pipeline("scale_f32");
  const SpecConstant s128[] = {SpecConstant::u32(0, 128)};
  Pipeline& c = ctx().pipeline("scale_f32", s128);
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  EXPECT_EQ(c.local_size()[0], 128u);
  EXPECT_EQ(a.local_size()[0], 64u);
}

TEST_F(VulkanTest, TimestampsGivePositiveDurationsPerDispatch) {
  ASSERT_TRUE(ctx().caps().timestamps_supported);
  const std::uint32_t n = 1 << 20;
  std::vector<float> x(n, 1.0f);
  Pipeline& p = ctx().pipeline("scale_f32");
  Stream s(ctx());
  s.set_profiling(true);
  Allocation a = upload_floats(s, x);
  Allocation b = ctx().alloc_device(n * 4);
  const ScalePush push{n, 2.0f, 0.0f};
  s.dispatch(p, {{a.ref(), Access::Read}, {b.ref(), Access::Write}}, push_bytes(push), 256, 1, 1,
             "first");
  s.dispatch(p, {{b.ref(), Access::Read}, {a.ref(), Access::Write}}, push_bytes(push), 256, 1, 1,
             "second");
  s.submit_and_wait();
  const auto t = s.take_timings();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].label, "first");
  EXPECT_EQ(t[1].label, "second");
  for (const auto& e : t) {
    EXPECT_GT(e.seconds, 0.0) << e.label;
    EXPECT_LT(e.seconds, 60.0) << e.label;
  }
  EXPECT_TRUE(s.take_timings().empty());
}

}  // namespace
}  // namespace kwaai::runtime
