// Vulkan-specific behaviour of the backend that the shared op suite (tests/kernels) does not
// reach: weights larger than one storage-buffer binding (split into row windows), views that
// start at unaligned byte offsets, partial code words, profiling from GPU timestamps, and
// limit errors. Each case compares against a plain double-precision loop written here.
// Run with KWAAI_VK_VALIDATION=1 (set by CMake): the backend throws on any validation message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "engine/vulkan/vulkan_backend.hpp"
#include "engine/vulkan/vulkan_backend_impl.hpp"

namespace kwaai::engine {
namespace {

std::uint32_t fresh_seed() {
  return std::random_device{}();
}

std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

template <class T>
std::vector<T> download_as(Backend& be, const Tensor& t) {
  std::vector<T> out(t.nbytes() / sizeof(T));
  be.download(t, std::as_writable_bytes(std::span<T>(out)));
  return out;
}

// Encodes `w` (n values) in dtype t, GGUF layout.
std::vector<std::byte> encode(DType t, const std::vector<float>& w) {
  std::vector<std::byte> out(dtype_bytes(t, static_cast<std::int64_t>(w.size())));
  from_f32(t, w.data(), out.data(), static_cast<std::int64_t>(w.size()));
  return out;
}

// n random values encoded in dtype t (GGUF layout), and the floats they decode to.
struct Weights {
  std::vector<std::byte> bytes;
  std::vector<float> dec;
};
Weights random_weights(std::mt19937& rng, DType t, std::int64_t n) {
  Weights w{encode(t, random_floats(rng, static_cast<std::size_t>(n))),
            std::vector<float>(static_cast<std::size_t>(n))};
  to_f32(t, w.bytes.data(), w.dec.data(), n);
  return w;
}

class VulkanBackendTest : public ::testing::Test {
 protected:
  void SetUp() override { be_ = make_vulkan_backend(0); }
  std::unique_ptr<Backend> be_;
};

// Reference y[m, n] for the decoded weight rows.
double ref_dot(const std::vector<float>& x, std::int64_t m, const std::vector<float>& w,
               std::int64_t n, std::int64_t K) {
  double s = 0;
  for (std::int64_t k = 0; k < K; ++k) s += double(x[m * K + k]) * double(w[n * K + k]);
  return s;
}

TEST_F(VulkanBackendTest, F32WeightOverOneBindingIsSplitIntoRowWindows) {
  // 4096 x 14336 f32 = 235 MB: more than lavapipe's 128 MiB per binding.
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::int64_t N = 14336, K = 4096;
  std::vector<float> w(static_cast<std::size_t>(N * K));
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto& v : w) v = d(rng);
  Tensor wt = be_->alloc(DType::F32, {N, K});
  be_->upload(wt, bytes_of(w));
  for (std::int64_t M : {1, 9}) {  // mat-vec and tiled paths
    SCOPED_TRACE("M " + std::to_string(M));
    auto x = random_floats(rng, static_cast<std::size_t>(M * K));
    Tensor xt = be_->alloc(DType::F32, {M, K});
    Tensor yt = be_->alloc(DType::F32, {M, N});
    be_->upload(xt, bytes_of(x));
    be_->matmul(xt, wt, yt);
    auto y = download_as<float>(*be_, yt);
    // Rows on both sides of every window boundary, and the last one.
    for (std::int64_t n : {0l, 1l, 8190l, 8191l, 8192l, 8193l, 12000l, N - 1}) {
      for (std::int64_t m = 0; m < M; ++m) {
        const double r = ref_dot(x, m, w, n, K);
        EXPECT_NEAR(y[m * N + n], r, 1e-3 * (1 + std::fabs(r))) << "m " << m << " n " << n;
      }
    }
  }
}

TEST_F(VulkanBackendTest, WeightViewsAtUnalignedOffsetsReadTheRightRows) {
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    // q8_0 rows of 3 blocks = 102 bytes and f16 rows of 33 values = 66 bytes: row 1 starts
    // 2 bytes past a word boundary.
    const std::int64_t K = is_quantized(t) ? 96 : 33, N = 7, M = 3;
    const auto [enc, wdec] = random_weights(rng, t, N * K);
    auto x = random_floats(rng, static_cast<std::size_t>(M * K));
    Tensor wt = be_->alloc(t, {N, K});
    be_->upload(wt, enc);
    Tensor xt = be_->alloc(DType::F32, {M, K});
    be_->upload(xt, bytes_of(x));
    Tensor wv = wt.slice_rows(1, N);
    Tensor yt = be_->alloc(DType::F32, {M, N - 1});
    be_->matmul(xt, wv, yt);
    auto y = download_as<float>(*be_, yt);
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N - 1; ++n) {
        const double r = ref_dot(x, m, wdec, n + 1, K);
        EXPECT_NEAR(y[m * (N - 1) + n], r, 1e-4 * (1 + std::fabs(r))) << m << "," << n;
      }
    // The same view gathered as an embedding table.
    std::vector<std::int32_t> ids{5, 0, 3};
    Tensor it = be_->alloc(DType::I32, {3});
    be_->upload(it, bytes_of(ids));
    Tensor et = be_->alloc(DType::F32, {3, K});
    be_->embedding(it, wv, et);
    auto e = download_as<float>(*be_, et);
    for (int i = 0; i < 3; ++i)
      for (std::int64_t k = 0; k < K; ++k)
        ASSERT_EQ(e[i * K + k], wdec[(ids[i] + 1) * K + k]) << i << "," << k;
  }
}

TEST_F(VulkanBackendTest, EmbeddingOverOneBindingGathersAcrossWindowsAndZeroesBadIds) {
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::int64_t V = 9000, K = 4096;  // f32: 147 MB table
  auto w = random_floats(rng, static_cast<std::size_t>(V * K));
  Tensor wt = be_->alloc(DType::F32, {V, K});
  be_->upload(wt, bytes_of(w));
  std::vector<std::int32_t> ids{0, 8191, 8192, 8999, -1, 9000, 4000};
  Tensor it = be_->alloc(DType::I32, {static_cast<std::int64_t>(ids.size())});
  be_->upload(it, bytes_of(ids));
  Tensor ot = be_->alloc(DType::F32, {static_cast<std::int64_t>(ids.size()), K});
  be_->embedding(it, wt, ot);
  auto o = download_as<float>(*be_, ot);
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::int64_t k = 0; k < K; k += 97) {
      const float want = (ids[i] >= 0 && ids[i] < V) ? w[ids[i] * K + k] : 0.0f;
      ASSERT_EQ(o[i * K + k], want) << "id " << ids[i] << " k " << k;
    }
}

TEST_F(VulkanBackendTest, QuantizeIntoUnalignedCodesViewKeepsNeighbouringBytes) {
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::int64_t N = 4096 + 37;
  auto x = random_floats(rng, static_cast<std::size_t>(N), -3, 3);
  std::vector<float> code(256);
  for (int i = 0; i < 256; ++i) code[i] = -1.0f + 2.0f * float(i) / 255.0f;
  Tensor xt = be_->alloc(DType::F32, {N});
  Tensor ct = be_->alloc(DType::F32, {256});
  Tensor at = be_->alloc(DType::F32, {2});
  Tensor qt = be_->alloc(DType::U8, {N + 2});
  be_->upload(xt, bytes_of(x));
  be_->upload(ct, bytes_of(code));
  std::vector<std::uint8_t> fill(static_cast<std::size_t>(N + 2), 0xAB);
  be_->upload(qt, bytes_of(fill));
  Tensor qv = qt.slice_rows(1, N + 1);  // starts at byte 1, ends mid-word
  be_->blockwise8_quantize(xt, ct, at, qv);
  auto q = download_as<std::uint8_t>(*be_, qt);
  auto am = download_as<float>(*be_, at);
  EXPECT_EQ(q.front(), 0xAB);
  EXPECT_EQ(q.back(), 0xAB);
  for (std::int64_t i = 0; i < N; ++i) {
    const float a = am[i / 4096] == 0 ? 1.0f : am[i / 4096];
    const float v = x[i] / a;
    int best = 0;
    for (int c = 1; c < 256; ++c)
      if (std::fabs(v - code[c]) < std::fabs(v - code[best])) best = c;
    ASSERT_EQ(q[i + 1], best) << "i " << i << " v " << v;
  }
  // And back.
  Tensor dt = be_->alloc(DType::F32, {N});
  be_->blockwise8_dequantize(qv, at, ct, dt);
  auto dq = download_as<float>(*be_, dt);
  for (std::int64_t i = 0; i < N; i += 13) ASSERT_EQ(dq[i], code[q[i + 1]] * am[i / 4096]) << i;
}

TEST(VulkanBackendVariants, MatvecWithoutSubgroupsMatchesTheDefaultPath) {
  // On a device with subgroup arithmetic (lavapipe has it) the default mat-vec uses
  // subgroupAdd; this runs the shared-memory reduction variant against the same reference.
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  auto opts = runtime::ContextOptions::from_environment();
  vulkan::VulkanBackend be(opts, {.use_subgroups = false});
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    const std::int64_t M = 5, N = 37, K = 320;
    const auto [enc, wdec] = random_weights(rng, t, N * K);
    auto x = random_floats(rng, static_cast<std::size_t>(M * K));
    Tensor wt = be.alloc(t, {N, K}), xt = be.alloc(DType::F32, {M, K}),
           yt = be.alloc(DType::F32, {M, N});
    be.upload(wt, enc);
    be.upload(xt, bytes_of(x));
    be.matmul(xt, wt, yt);
    auto y = download_as<float>(be, yt);
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) {
        const double r = ref_dot(x, m, wdec, n, K);
        ASSERT_NEAR(y[m * N + n], r, 1e-4 * (1 + std::fabs(r))) << m << "," << n;
      }
  }
}

TEST(VulkanBackendVariants, MatvecShapesFusionsAndReductionsAgainstTheReference) {
  // The decode mat-vec at several workgroup shapes (the per-device-class choices and odd
  // ones), with and without subgroups, for every M = 1..8, N not a multiple of the rows per
  // workgroup, K not a multiple of 256 (and odd for the float dtypes: tail pieces and odd
  // half offsets); plain, accumulating (matmul_add) and gate/up fused (matmul_silu_mul).
  // Outputs are poisoned first, so an unwritten element fails.
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  auto opts = runtime::ContextOptions::from_environment();
  struct Variant {
    bool subgroups;
    std::uint32_t threads, rows;
    std::vector<std::int64_t> Ms;  // each M is its own pipeline: every M on the default shape
  };
  const Variant variants[] = {{true, 0, 0, {1, 2, 3, 4, 5, 6, 7, 8}},
                              {false, 0, 0, {1, 8}},
                              {true, 128, 4, {3}},
                              {false, 32, 3, {5}},
                              {true, 256, 1, {2}}};
  for (const Variant& v : variants) {
    vulkan::VulkanBackend be(
        opts, {.use_subgroups = v.subgroups, .matvec_threads = v.threads, .matvec_rows = v.rows});
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
      const std::int64_t N = 37, K = is_quantized(t) ? 160 : 77;
      const auto [eg, dg] = random_weights(rng, t, N * K);
      const auto [eu, du] = random_weights(rng, t, N * K);
      Tensor wgt = be.alloc(t, {N, K}), wut = be.alloc(t, {N, K});
      be.upload(wgt, eg);
      be.upload(wut, eu);
      for (std::int64_t M : v.Ms) {
        SCOPED_TRACE(std::string(dtype_name(t)) + " M=" + std::to_string(M) + " threads " +
                     std::to_string(v.threads) + " rows " + std::to_string(v.rows) +
                     (v.subgroups ? " subgroups" : " shared"));
        auto x = random_floats(rng, static_cast<std::size_t>(M * K));
        auto y0 = random_floats(rng, static_cast<std::size_t>(M * N));
        Tensor xt = be.alloc(DType::F32, {M, K});
        be.upload(xt, bytes_of(x));
        const std::vector<float> poison(static_cast<std::size_t>(M * N),
                                        std::numeric_limits<float>::quiet_NaN());
        Tensor plain = be.alloc(DType::F32, {M, N}), acc = be.alloc(DType::F32, {M, N}),
               fused = be.alloc(DType::F32, {M, N});
        be.upload(plain, bytes_of(poison));
        be.upload(fused, bytes_of(poison));
        be.upload(acc, bytes_of(y0));
        be.matmul(xt, wgt, plain);
        be.matmul_add(xt, wgt, acc);
        be.matmul_silu_mul(xt, wgt, wut, fused);
        auto yp = download_as<float>(be, plain);
        auto ya = download_as<float>(be, acc);
        auto yf = download_as<float>(be, fused);
        // The kernel sums in f32 in its own order; quantized weights take f32 activations
        // here (no activation quantization on this backend), so 1e-4 relative holds.
        for (std::int64_t m = 0; m < M; ++m)
          for (std::int64_t n = 0; n < N; ++n) {
            const std::size_t i = static_cast<std::size_t>(m * N + n);
            const double g = ref_dot(x, m, dg, n, K), u = ref_dot(x, m, du, n, K);
            const double f = g / (1 + std::exp(-g)) * u;
            ASSERT_NEAR(yp[i], g, 1e-4 * (1 + std::fabs(g))) << m << "," << n;
            ASSERT_NEAR(ya[i], y0[i] + g, 1e-4 * (1 + std::fabs(y0[i] + g))) << m << "," << n;
            ASSERT_NEAR(yf[i], f, 1e-4 * (1 + std::fabs(f))) << m << "," << n;
          }
      }
    }
  }
}

TEST(VulkanBackendVariants, MatmulTileTableFallsBackWithinTheDeviceLimits) {
  // The table and its fallbacks on made-up device classes and limits (no device needed).
  runtime::DeviceCaps big;
  big.type = runtime::DeviceType::DiscreteGpu;
  big.max_compute_shared_memory_size = 48 * 1024;
  big.max_compute_work_group_invocations = 1024;
  big.max_compute_work_group_size[0] = 1024;
  auto shape = [](const vulkan::MatmulTile& t) { return std::pair{t.tile, t.block}; };
  EXPECT_EQ(shape(vulkan::matmul_tile(big, {}, 512, 4096)), std::pair(128u, 8u));
  EXPECT_EQ(shape(vulkan::matmul_tile(big, {}, 40, 4096)), std::pair(64u, 4u));  // one tile of M
  runtime::DeviceCaps cpu = big;
  cpu.type = runtime::DeviceType::Cpu;
  cpu.is_cpu_device = true;
  EXPECT_EQ(shape(vulkan::matmul_tile(cpu, {}, 512, 4096)), std::pair(64u, 16u));
  // The spec minimums: 16 KiB of shared memory, 128 invocations.
  runtime::DeviceCaps small = big;
  small.type = runtime::DeviceType::IntegratedGpu;
  small.max_compute_shared_memory_size = 16 * 1024;
  small.max_compute_work_group_invocations = 128;
  small.max_compute_work_group_size[0] = 128;
  for (const auto& o : {vulkan::VulkanBackendOptions{},
                        vulkan::VulkanBackendOptions{.matmul_tile = 128, .matmul_block = 8}}) {
    const auto t = vulkan::matmul_tile(small, o, 512, 4096);
    EXPECT_LE(t.shared_bytes(), 16u * 1024) << t.tile << "x" << t.block;
    EXPECT_LE(t.threads(), 128u) << t.tile << "x" << t.block;
    EXPECT_EQ(t.tile % t.block, 0u);
  }
  // Blocks are capped at 32 per side.
  EXPECT_EQ(vulkan::matmul_tile(cpu, {.matmul_tile = 64, .matmul_block = 64}, 512, 512).block, 32u);
}

TEST(VulkanBackendVariants, MatmulTileShapesAgainstTheReference) {
  // The tiled prefill matmul at every shape of the tile table and odd ones (tile 16..128,
  // register blocks 1..8, so 16..256 threads and threads taking several load pieces), M and N
  // not multiples of any tile (partial tiles both ways), K not a multiple of 256, plain and
  // accumulating (matmul_add); outputs poisoned first.
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  auto opts = runtime::ContextOptions::from_environment();
  const std::pair<std::uint32_t, std::uint32_t> shapes[] = {
      {64, 4}, {128, 8}, {32, 4},   {32, 2}, {64, 8},
      {16, 1}, {64, 16}, {128, 32}, {64, 32}};  // (64 x 64: see matmul_tile)
  for (const auto& [tile, block] : shapes) {
    vulkan::VulkanBackend be(opts, {.matmul_tile = tile, .matmul_block = block});
    const auto used = vulkan::matmul_tile(be.context().caps(),
                                          {.matmul_tile = tile, .matmul_block = block}, 70, 130);
    if (used.tile != tile) continue;  // the device cannot hold this shape: it falls back
    for (DType t : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " tile " + std::to_string(tile) + " block " +
                   std::to_string(block));
      const std::int64_t M = 70, N = 130, K = 96;
      const auto [enc, wdec] = random_weights(rng, t, N * K);
      auto x = random_floats(rng, static_cast<std::size_t>(M * K));
      auto y0 = random_floats(rng, static_cast<std::size_t>(M * N));
      Tensor wt = be.alloc(t, {N, K}), xt = be.alloc(DType::F32, {M, K}),
             plain = be.alloc(DType::F32, {M, N}), acc = be.alloc(DType::F32, {M, N});
      be.upload(wt, enc);
      be.upload(xt, bytes_of(x));
      be.upload(plain, bytes_of(std::vector<float>(static_cast<std::size_t>(M * N),
                                                   std::numeric_limits<float>::quiet_NaN())));
      be.upload(acc, bytes_of(y0));
      be.matmul(xt, wt, plain);
      be.matmul_add(xt, wt, acc);
      auto yp = download_as<float>(be, plain);
      auto ya = download_as<float>(be, acc);
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = 0; n < N; ++n) {
          const std::size_t i = static_cast<std::size_t>(m * N + n);
          const double r = ref_dot(x, m, wdec, n, K);
          ASSERT_NEAR(yp[i], r, 1e-4 * (1 + std::fabs(r))) << m << "," << n;
          ASSERT_NEAR(ya[i], y0[i] + r, 1e-4 * (1 + std::fabs(y0[i] + r))) << m << "," << n;
        }
    }
  }
}

TEST_F(VulkanBackendTest, CopyHandlesWordAlignedAndByteOffsetViews) {
  std::vector<std::uint8_t> src(103);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(i * 7 + 1);
  Tensor s = be_->alloc(DType::U8, {103});
  Tensor d = be_->alloc(DType::U8, {103});
  be_->upload(s, bytes_of(src));
  be_->upload(d, bytes_of(std::vector<std::uint8_t>(103, 0)));
  // Word-aligned (kernel) copy of bytes [0, 100), then byte-offset (transfer) copy of [101, 103)
  // into [1, 3).
  be_->copy(s.slice_rows(0, 100), d.slice_rows(0, 100));
  be_->copy(s.slice_rows(101, 103), d.slice_rows(1, 3));
  auto out = download_as<std::uint8_t>(*be_, d);
  for (int i = 3; i < 100; ++i) ASSERT_EQ(out[i], src[i]) << i;
  EXPECT_EQ(out[0], src[0]);
  EXPECT_EQ(out[1], src[101]);
  EXPECT_EQ(out[2], src[102]);
  EXPECT_EQ(out[100], 0);
}

TEST_F(VulkanBackendTest, CopyKernelMovesVectorsWordsAndManyPiecesPerInvocation) {
  // 16-byte vector copies (aligned views, whole vectors), word copies (a view 4 bytes in),
  // and a copy larger than the kernel's bounded grid (1024 x 256 invocations of 16 bytes =
  // 4 MiB), so invocations loop; the bytes around each destination stay as they were.
  const std::int64_t n = (9 << 20) / 4 + 12;  // words: 9 MiB + 48 bytes
  std::vector<std::uint32_t> src(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint32_t>(i * 2654435761u);
  Tensor s = be_->alloc(DType::I32, {n}), d = be_->alloc(DType::I32, {n});
  be_->upload(s, bytes_of(src));
  const std::vector<std::uint32_t> zeros(static_cast<std::size_t>(n), 0u);
  struct Case {
    std::int64_t from, to, len;
  };
  for (const Case& c : {Case{0, 0, n}, Case{4, 8, n - 12}, Case{1, 5, n - 8}, Case{4, 1, 4096}}) {
    SCOPED_TRACE("from " + std::to_string(c.from) + " to " + std::to_string(c.to) + " len " +
                 std::to_string(c.len));
    be_->upload(d, bytes_of(zeros));
    be_->copy(s.slice_rows(c.from, c.from + c.len), d.slice_rows(c.to, c.to + c.len));
    auto out = download_as<std::uint32_t>(*be_, d);
    for (std::int64_t i = 0; i < n; ++i) {
      const bool in = i >= c.to && i < c.to + c.len;
      const std::uint32_t want = in ? src[static_cast<std::size_t>(i - c.to + c.from)] : 0u;
      ASSERT_EQ(out[static_cast<std::size_t>(i)], want) << i;
    }
  }
}

TEST(VulkanBackendLifetime, TensorsMayOutliveTheBackendWithUnflushedWork) {
  Tensor kept;
  {
    auto be = make_vulkan_backend(0);
    kept = be->alloc(DType::F32, {1024});
    std::vector<float> ones(1024, 1.0f);
    be->upload(kept, bytes_of(ones));
    Tensor tmp = be->alloc(DType::F32, {1024});
    be->add(kept, kept, tmp);  // recorded, never flushed: dropped with the backend
  }
  EXPECT_TRUE(kept.defined());
  kept = Tensor();  // frees its range through the context the storage co-owns
}

TEST_F(VulkanBackendTest, TopkWithThousandsOfTiesAtTheThresholdKeepsLowestIndices) {
  // Values on a coarse grid: the k-th magnitude is shared by hundreds of entries spread over
  // many 256-wide chunks, which exercises the ordered tie compaction and the bitonic sort.
  const std::uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::int64_t M = 3, N = 50000, k = 3000;
  std::uniform_int_distribution<int> level(-40, 40);
  std::vector<float> x(static_cast<std::size_t>(M * N));
  for (auto& v : x) v = static_cast<float>(level(rng)) / 8.0f;
  Tensor xt = be_->alloc(DType::F32, {M, N});
  be_->upload(xt, bytes_of(x));
  Tensor it = be_->alloc(DType::I32, {M, k}), vt = be_->alloc(DType::F32, {M, k});
  be_->topk(xt, k, it, vt);
  auto idx = download_as<std::int32_t>(*be_, it);
  auto val = download_as<float>(*be_, vt);
  for (std::int64_t m = 0; m < M; ++m) {
    std::vector<std::int32_t> order(static_cast<std::size_t>(N));
    for (std::int32_t i = 0; i < N; ++i) order[i] = i;
    const float* row = x.data() + m * N;
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return std::fabs(row[a]) > std::fabs(row[b]);
    });
    for (std::int64_t j = 0; j < k; ++j) {
      ASSERT_EQ(idx[m * k + j], order[j]) << "row " << m << " rank " << j;
      ASSERT_EQ(val[m * k + j], row[order[j]]) << "row " << m << " rank " << j;
    }
  }
}

TEST_F(VulkanBackendTest, ProfilingReportsEveryDispatchWithGpuTime) {
  be_->set_profiling(true);
  const std::int64_t K = 4096, N = 256;
  std::mt19937 rng(1);
  auto w = random_floats(rng, static_cast<std::size_t>(N * K));
  Tensor wt = be_->alloc(DType::Q8_0, {N, K});
  be_->upload(wt, encode(DType::Q8_0, w));
  Tensor xt = be_->alloc(DType::F32, {1, K});
  be_->upload(xt, bytes_of(random_floats(rng, K)));
  Tensor yt = be_->alloc(DType::F32, {1, N});
  Tensor st = be_->alloc(DType::F32, {1, N});
  be_->matmul(xt, wt, yt);
  be_->softmax(yt, st);
  be_->flush();
  auto prof = be_->take_profile();
  ASSERT_EQ(prof.size(), 2u);
  EXPECT_EQ(prof[0].op, "matmul q8_0 [1,4096]x[256,4096]");
  EXPECT_EQ(prof[1].op.rfind("softmax", 0), 0u);
  for (const auto& p : prof) EXPECT_GT(p.seconds, 0.0) << p.op;
  EXPECT_TRUE(be_->take_profile().empty());
}

TEST_F(VulkanBackendTest, HeadDimOverKernelLimitIsALengthError) {
  Tensor q = be_->alloc(DType::F32, {1, 1, 1, 1024});
  Tensor k = be_->alloc(DType::F32, {1, 4, 1, 1024});
  Tensor o = be_->alloc(DType::F32, {1, 1, 1, 1024});
  EXPECT_THROW(be_->attention(q, k, k, o, 0, 1.0f, 0, 0.0f), std::length_error);
}

TEST_F(VulkanBackendTest, ActivationOverOneBindingIsALengthError) {
  // 40M floats (160 MB) cannot be one binding on lavapipe; devices with larger ranges skip.
  Tensor a = be_->alloc(DType::F32, {40'000'000});
  try {
    be_->add(a, a, a);
    be_->flush();
    GTEST_SKIP() << "device binds 160 MB in one descriptor";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find("maxStorageBufferRange"), std::string::npos) << e.what();
  }
}

TEST_F(VulkanBackendTest, TensorsOfAnotherBackendAreRejected) {
  auto other = make_vulkan_backend(0);
  Tensor a = other->alloc(DType::F32, {4});
  Tensor b = be_->alloc(DType::F32, {4});
  EXPECT_THROW(be_->add(a, b, b), std::invalid_argument);
  struct HostStorage : Storage {
    std::size_t bytes() const override { return 16; }
  };
  Tensor h(std::make_shared<HostStorage>(), DType::F32, {4});
  std::vector<float> four(4, 1.0f);
  EXPECT_THROW(be_->upload(h, bytes_of(four)), std::invalid_argument);
}

}  // namespace
}  // namespace kwaai::engine
