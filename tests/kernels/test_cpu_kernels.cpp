// The CPU backend's per-ISA inner loops (scalar, AVX2, AVX-512 VNNI) must compute the same
// dot products: the backend only ever runs the fastest table the CPU has, so the others are
// exercised here, against the scalar table and a double reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu/kernels.hpp"
#include "tests/kernels/op_test_util.hpp"

namespace kwaai::engine::cpu {
namespace {

std::vector<const KernelTable*> tables() {
  std::vector<const KernelTable*> t{&scalar_kernels()};
  if (auto* k = avx2_kernels()) t.push_back(k);
  if (auto* k = avx512_kernels()) t.push_back(k);
  return t;
}

TEST(CpuKernels, every_isa_table_agrees_on_float_and_quantized_dots) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t n : {1, 7, 15, 16, 17, 31, 33, 64, 4097}) {
    const auto a = rng.vec(n), b = rng.vec(n);
    std::vector<std::uint16_t> h(a.size()), bf(a.size());
    double ref = 0, ref_h = 0, ref_bf = 0, abs_sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      h[i] = f32_to_f16(a[i]);
      bf[i] = f32_to_bf16(a[i]);
      ref += static_cast<double>(a[i]) * b[i];
      ref_h += static_cast<double>(f16_to_f32(h[i])) * b[i];
      ref_bf += static_cast<double>(bf16_to_f32(bf[i])) * b[i];
      abs_sum += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    const double tol = 1e-6 * std::sqrt(static_cast<double>(n)) * abs_sum + 1e-6;
    for (const auto* k : tables()) {
      SCOPED_TRACE(std::string(k->name) + " n " + std::to_string(n));
      EXPECT_NEAR(k->dot_f32(a.data(), b.data(), n), ref, tol);
      EXPECT_NEAR(k->dot_f16(h.data(), b.data(), n), ref_h, tol);
      EXPECT_NEAR(k->dot_bf16(bf.data(), b.data(), n), ref_bf, tol);
      std::vector<float> row(a.size());
      k->f16_to_f32_row(h.data(), row.data(), n);
      for (std::size_t i = 0; i < row.size(); ++i) ASSERT_EQ(row[i], f16_to_f32(h[i]));
      k->bf16_to_f32_row(bf.data(), row.data(), n);
      for (std::size_t i = 0; i < row.size(); ++i) ASSERT_EQ(row[i], bf16_to_f32(bf[i]));
    }
  }
  for (std::int64_t nb : {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 128, 129, 130, 131, 448}) {
    const auto w = rng.vec(nb * 32, -2, 2), x = rng.vec(nb * 32, -3, 3);
    std::vector<BlockQ8_0> w8(static_cast<std::size_t>(nb));
    std::vector<BlockQ4_0> w4(static_cast<std::size_t>(nb));
    std::vector<BlockQ8Act> xa(static_cast<std::size_t>(nb));
    quantize_row_q8_0(w.data(), w8.data(), nb * 32);
    quantize_row_q4_0(w.data(), w4.data(), nb * 32);
    // Extreme codes too: -128 is a legal Q8_0 weight code in a GGUF file.
    w8[0].qs[0] = -128;
    w8[0].qs[1] = 127;
    // And the extreme Q4_0 codes 0 and 15 (quantize_row_q4_0 rarely produces 0).
    w4[0].qs[0] = 0x0F;
    w4[static_cast<std::size_t>(nb - 1)].qs[15] = 0xF0;
    quantize_act_q8(x.data(), xa.data(), nb);
    std::vector<ActGroup4> xg(static_cast<std::size_t>(nb / 4));
    group_act_q4(xa.data(), xg.data(), nb);
    // Integer products are exact, so tables differ only in float summation of block terms.
    const float s8 = scalar_kernels().dot_q8_0(w8.data(), xa.data(), nb);
    const float s4 = scalar_kernels().dot_q4_0(w4.data(), xa.data(), xg.data(), nb);
    const double tol = 1e-5 * (std::fabs(s8) + std::fabs(s4) + static_cast<double>(nb));
    for (const auto* k : tables()) {
      SCOPED_TRACE(std::string(k->name) + " blocks " + std::to_string(nb));
      EXPECT_NEAR(k->dot_q8_0(w8.data(), xa.data(), nb), s8, tol);
      EXPECT_NEAR(k->dot_q4_0(w4.data(), xa.data(), xg.data(), nb), s4, tol);
    }
  }
}

TEST(CpuKernels, multi_row_dots_equal_one_dot_per_activation_row) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t nb : {1, 2, 3, 5, 8, 13, 128, 131}) {
    const auto w = rng.vec(nb * 32, -2, 2);
    std::vector<BlockQ8_0> w8(static_cast<std::size_t>(nb));
    std::vector<BlockQ4_0> w4(static_cast<std::size_t>(nb));
    quantize_row_q8_0(w.data(), w8.data(), nb * 32);
    quantize_row_q4_0(w.data(), w4.data(), nb * 32);
    for (int rows : {1, 2, 3, 4, 5, 6, 7, 8, 11}) {
      SCOPED_TRACE("blocks " + std::to_string(nb) + " rows " + std::to_string(rows));
      const auto x = rng.vec(rows * nb * 32, -3, 3);
      std::vector<BlockQ8Act> xa(static_cast<std::size_t>(rows * nb));
      std::vector<ActGroup4> xg(static_cast<std::size_t>(rows * (nb / 4)));
      for (int r = 0; r < rows; ++r) {
        quantize_act_q8(x.data() + r * nb * 32, xa.data() + r * nb, nb);
        group_act_q4(xa.data() + r * nb, xg.data() + r * (nb / 4), nb);
      }
      for (const auto* k : tables()) {
        SCOPED_TRACE(k->name);
        std::vector<float> o8(static_cast<std::size_t>(rows), std::nanf(""));
        std::vector<float> o4(static_cast<std::size_t>(rows), std::nanf(""));
        k->dot_q8_0_rows(w8.data(), xa.data(), nb, rows, o8.data());
        k->dot_q4_0_rows(w4.data(), xa.data(), xg.data(), nb, rows, o4.data());
        for (int r = 0; r < rows; ++r) {
          const float s8 = scalar_kernels().dot_q8_0(w8.data(), xa.data() + r * nb, nb);
          const float s4 = scalar_kernels().dot_q4_0(w4.data(), xa.data() + r * nb, nullptr, nb);
          const double tol = 1e-5 * (std::fabs(s8) + std::fabs(s4) + static_cast<double>(nb));
          EXPECT_NEAR(o8[static_cast<std::size_t>(r)], s8, tol) << "row " << r;
          EXPECT_NEAR(o4[static_cast<std::size_t>(r)], s4, tol) << "row " << r;
        }
      }
    }
  }
}

TEST(CpuKernels, every_isa_table_quantizes_activations_to_the_reference_bytes) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t nb : {1, 2, 7, 128, 448}) {
    auto x = rng.vec(nb * 32, -4, 4);
    // Ties of the rounding (x * id exactly k + 0.5), a zero block and an amax sign flip.
    for (std::int64_t j = 0; j < 32; ++j) x[j] = (j % 2 ? 1.0f : -1.0f) * (j + 0.5f);
    x[31] = 127.0f;  // id = 1: codes are the values, ties at .5 round to even
    if (nb > 1)
      for (std::int64_t j = 32; j < 64; ++j) x[j] = 0.0f;
    std::vector<BlockQ8Act> ref(static_cast<std::size_t>(nb));
    quantize_act_q8(x.data(), ref.data(), nb);
    EXPECT_EQ(ref[0].qs[0], 0);  // -0.5 -> -0
    EXPECT_EQ(ref[0].qs[1], 2);  // 1.5 -> 2
    EXPECT_EQ(ref[0].qs[5], 6);  // 5.5 -> 6
    for (const auto* k : tables()) {
      SCOPED_TRACE(std::string(k->name) + " blocks " + std::to_string(nb));
      std::vector<BlockQ8Act> got(static_cast<std::size_t>(nb));
      std::memset(got.data(), 0xA5, got.size() * sizeof(BlockQ8Act));
      k->quantize_act(x.data(), got.data(), nb);
      ASSERT_EQ(std::memcmp(got.data(), ref.data(), got.size() * sizeof(BlockQ8Act)), 0);
    }
  }
}

TEST(CpuKernels, every_isa_table_agrees_on_axpy_exp_sum_and_silu_mul) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t n : {1, 7, 15, 16, 17, 33, 128, 4097}) {
    SCOPED_TRACE("n " + std::to_string(n));
    auto x = rng.vec(n, -30, 30);
    const auto y0 = rng.vec(n, -3, 3), u = rng.vec(n, -2, 2);
    // exp's underflow end after the shift: exp(-112.5) and a result that is denormal in float.
    if (n > 3) x[3] = -100.0f;
    if (n > 4) x[4] = -78.0f;
    // Extremes: exp's overflow / underflow ends and silu's saturation.
    auto g = rng.vec(n, -20, 20);
    g[0] = 120.0f;
    if (n > 1) g[1] = -120.0f;
    if (n > 2) g[2] = 0.0f;
    const float a = 0.75f, shift = 12.5f;
    for (const auto* k : tables()) {
      SCOPED_TRACE(k->name);
      std::vector<float> y = y0;
      k->axpy_f32(a, x.data(), y.data(), n);
      for (std::int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[i], y0[i] + static_cast<double>(a) * x[i], 1e-5 * (1 + std::fabs(y[i])));

      std::vector<float> e = x;
      const double sum = k->exp_sum_f32(e.data(), shift, n);
      double ref_sum = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const float d = x[i] - shift;  // the kernels subtract in float too
        const double r = std::exp(static_cast<double>(d));
        ref_sum += r;
        ASSERT_NEAR(e[i], r, 4e-7 * r + 1e-37) << "i " << i << " x " << x[i];
      }
      EXPECT_NEAR(sum, ref_sum, 1e-6 * ref_sum);

      std::vector<float> o(static_cast<std::size_t>(n), std::nanf(""));
      k->silu_mul_f32(g.data(), u.data(), o.data(), n);
      for (std::int64_t i = 0; i < n; ++i) {
        const double gi = g[i];
        const double r = gi / (1.0 + std::exp(-gi)) * u[i];
        ASSERT_NEAR(o[i], r, 1e-6 * (std::fabs(r) + 1e-30)) << "i " << i << " g " << g[i];
      }
    }
  }
}

}  // namespace
}  // namespace kwaai::engine::cpu
