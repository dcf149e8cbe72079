// engine/core: dtype names/sizes, f16/bf16 rounding, GGUF Q8_0/Q4_0 block codecs, views.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "engine/core/dtype.hpp"
#include "engine/core/tensor.hpp"

namespace kwaai::engine {
namespace {

TEST(DType, names_round_trip_and_unknown_name_throws) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::I32,
                 DType::U8, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  EXPECT_THROW(dtype_from_name("q3_k"), std::invalid_argument);
}

TEST(DType, byte_sizes_follow_gguf_block_layouts) {
  EXPECT_EQ(dtype_bytes(DType::F32, 3), 12u);
  EXPECT_EQ(dtype_bytes(DType::BF16, 3), 6u);
  EXPECT_EQ(dtype_bytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(dtype_bytes(DType::Q4_0, 4096), 128u * 18u);
  EXPECT_THROW(dtype_bytes(DType::Q4_0, 33), std::invalid_argument);
}

TEST(F16, every_half_round_trips_through_f32) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << "half 0x" << std::hex << h;
  }
}

__attribute__((target("f16c"))) std::uint16_t hw_f32_to_f16(float f) {
  return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

TEST(F16, rounding_matches_the_hardware_converter_on_random_floats) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C to compare against";
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 gen(seed);
  for (int i = 0; i < 2000000; ++i) {
    // Random bit patterns restricted to the interesting exponent range (subnormal..inf).
    std::uint32_t bits = static_cast<std::uint32_t>(gen());
    bits = (bits & 0x807fffffu) | ((100u + static_cast<std::uint32_t>(gen() % 50)) << 23);
    const float f = std::bit_cast<float>(bits);
    ASSERT_EQ(f32_to_f16(f), hw_f32_to_f16(f)) << f;
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // halfway to 65536 rounds to even: inf
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
}

TEST(BF16, round_to_nearest_even_and_nan_stays_nan) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::bit_cast<float>(0x7f800001u)))));
}

TEST(Q8_0, matches_ggml_reference_rule) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[static_cast<std::size_t>(i)] = (i - 13) * 0.1f;
  BlockQ8_0 b{};
  quantize_row_q8_0(x.data(), &b, 32);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float d = amax / 127.0f;  // amax = |31 - 13| * 0.1
  EXPECT_EQ(b.d, f32_to_f16(d));
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(b.qs[i],
              static_cast<std::int8_t>(std::round(x[static_cast<std::size_t>(i)] * (1.0f / d))));
  std::vector<float> back(32);
  to_f32(DType::Q8_0, &b, back.data(), 32);
  for (int i = 0; i < 32; ++i)
    EXPECT_NEAR(back[static_cast<std::size_t>(i)], x[static_cast<std::size_t>(i)], d * 0.51 + 1e-3);
}

TEST(Q4_0, signed_max_maps_to_code_zero_and_codes_truncate) {
  // Largest magnitude is negative (-4): d = -4 / -8 = 0.5, so -4 -> code 0, and
  // x -> trunc(x / 0.5 + 8.5) clamped to 15.
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;
  x[1] = 3.9f;     // 7.8 + 8.5 = 16.3 -> 16 -> clamped 15
  x[2] = 0.26f;    // 0.52 + 8.5 = 9.02 -> 9
  x[17] = -0.24f;  // -0.48 + 8.5 = 8.02 -> 8
  BlockQ4_0 b{};
  quantize_row_q4_0(x.data(), &b, 32);
  EXPECT_EQ(f16_to_f32(b.d), 0.5f);
  EXPECT_EQ(b.qs[0] & 15, 0);
  EXPECT_EQ(b.qs[1] & 15, 15);
  EXPECT_EQ(b.qs[2] & 15, 9);
  EXPECT_EQ(b.qs[1] >> 4, 8);  // x[17]
  EXPECT_EQ(b.qs[3] & 15, 8);  // zeros -> code 8
  std::vector<float> back(32);
  to_f32(DType::Q4_0, &b, back.data(), 32);
  EXPECT_EQ(back[0], -4.0f);
  EXPECT_EQ(back[1], 3.5f);
  EXPECT_EQ(back[2], 0.5f);
  EXPECT_EQ(back[3], 0.0f);
}

TEST(Quant, round_trip_error_within_half_step_on_random_rows) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> u(-3, 3);
  std::vector<float> x(4096), back(4096);
  for (auto& v : x) v = u(gen);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    std::vector<std::byte> buf(dtype_bytes(t, 4096));
    from_f32(t, x.data(), buf.data(), 4096);
    to_f32(t, buf.data(), back.data(), 4096);
    for (int b = 0; b < 128; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j)
        amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(b * 32 + j)]));
      // Q8_0: half a step (amax/127/2). Q4_0: codes -8..7 times amax/8 cover [-amax, 7/8
      // amax] on the side opposite the extreme value, so the clamp there can cost a whole
      // step. Plus the f16 rounding of the scale.
      const float bound = t == DType::Q8_0 ? amax / 127 * 0.5f : amax / 8;
      for (int j = 0; j < 32; ++j) {
        const auto i = static_cast<std::size_t>(b * 32 + j);
        ASSERT_LE(std::fabs(back[i] - x[i]), bound * 1.01f + amax * 1e-3f)
            << dtype_name(t) << " i " << i;
      }
    }
  }
}

class TestStorage final : public Storage {
 public:
  explicit TestStorage(std::size_t n) : n_(n) {}
  std::size_t bytes() const override { return n_; }

 private:
  std::size_t n_;
};

TEST(Tensor, views_are_bounds_checked) {
  auto s = std::make_shared<TestStorage>(4 * 10 * 8);
  Tensor t(s, DType::F32, {10, 8});
  EXPECT_EQ(t.describe(), "f32[10, 8]");
  EXPECT_EQ(t.nbytes(), 320u);
  const Tensor v = t.slice_rows(3, 5);
  EXPECT_EQ(v.offset(), 3u * 32u);
  EXPECT_EQ(v.shape(), (Shape{2, 8}));
  EXPECT_THROW(t.slice_rows(5, 11), std::out_of_range);
  EXPECT_THROW(t.slice_rows(-1, 2), std::out_of_range);
  EXPECT_EQ(t.reshaped({80}).numel(), 80);
  EXPECT_THROW(t.reshaped({81}), std::invalid_argument);
  EXPECT_THROW(Tensor(s, DType::F32, {10, 8}, 4), std::invalid_argument);
  EXPECT_THROW(Tensor(s, DType::F32, {-1, 8}), std::invalid_argument);
  EXPECT_THROW(Tensor(s, DType::Q8_0, {2, 48}), std::invalid_argument);  // splits a block
  EXPECT_EQ(t.dim(-1), 8);
  EXPECT_THROW(t.dim(2), std::out_of_range);
}

TEST(Tensor, quantized_row_slices_land_on_block_boundaries) {
  auto s = std::make_shared<TestStorage>(dtype_bytes(DType::Q4_0, 4 * 64));
  Tensor t(s, DType::Q4_0, {4, 64});
  EXPECT_EQ(t.slice_rows(2, 4).offset(), 2u * 2u * 18u);
}

}  // namespace
}  // namespace kwaai::engine
