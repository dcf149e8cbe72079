// matmul on every weight dtype, both paths (decode M <= 8, prefill M > 8), odd sizes and
// real Llama sizes, against a double-precision reference on the decoded weights.
#include <algorithm>
#include <cmath>

#include "engine/core/formats.hpp"
#include "tests/kernels/op_test_util.hpp"

namespace kwaai::test {
namespace {

using engine::DType;

constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                                  DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

bool kquant(DType t) {
  return engine::format_info(t).block_elems == 256;
}

// Checks y against the reference on the output columns `cols` (all when there are few).
// Tolerance per element (docs/testing.md): float rounding 1e-6 * sqrt(K) * sum|x||w|, plus
// for quantized weights the activation-quantization bound sum_k |w_k| * amax_blk(x)/254
// (an 8-bit activation code is off by at most half a step, amax/127/2).
void run_matmul(engine::Backend& be, Rng& rng, DType wt, std::int64_t M, std::int64_t N,
                std::int64_t K, std::int64_t max_checked_cols = 256) {
  SCOPED_TRACE(std::string(engine::dtype_name(wt)) + " M=" + std::to_string(M) +
               " N=" + std::to_string(N) + " K=" + std::to_string(K));
  const auto x = rng.vec(M * K);
  const auto w_src = rng.vec(N * K);
  const auto xt = upload(be, DType::F32, {M, K}, x);
  std::vector<float> w;
  const auto wt_t = upload_as(be, wt, {N, K}, w_src, &w);
  const auto yt = poisoned(be, DType::F32, {M, N});
  be.matmul(xt, wt_t, yt);
  const auto y = download<float>(be, yt);

  std::vector<std::int64_t> cols;
  const std::int64_t stride = std::max<std::int64_t>(1, N / max_checked_cols);
  for (std::int64_t n = 0; n < N; n += stride) cols.push_back(n);
  if (cols.back() != N - 1) cols.push_back(N - 1);

  std::size_t bad = 0;
  for (std::int64_t m = 0; m < M; ++m) {
    for (std::int64_t n : cols) {
      double ref = 0, abs_sum = 0, act_bound = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const double xv = x[static_cast<std::size_t>(m * K + k)];
        const double wv = w[static_cast<std::size_t>(n * K + k)];
        ref += xv * wv;
        abs_sum += std::fabs(xv * wv);
      }
      if (engine::is_quantized(wt)) {
        for (std::int64_t b = 0; b < K / 32; ++b) {
          double amax = 0, wabs = 0;
          for (std::int64_t j = b * 32; j < b * 32 + 32; ++j) {
            amax = std::max(amax,
                            std::fabs(static_cast<double>(x[static_cast<std::size_t>(m * K + j)])));
            wabs += std::fabs(static_cast<double>(w[static_cast<std::size_t>(n * K + j)]));
          }
          act_bound += wabs * amax / 254.0;
        }
      }
      const double tol =
          1e-6 * std::sqrt(static_cast<double>(K)) * abs_sum + act_bound * 1.001 + 1e-6;
      const float got = y[static_cast<std::size_t>(m * N + n)];
      if (!(std::fabs(got - ref) <= tol) && bad++ < 5)
        ADD_FAILURE() << "y[" << m << "," << n << "] = " << got << ", reference " << ref
                      << ", tolerance " << tol;
    }
  }
  // Every element, checked or not, must have been written (the poison is NaN).
  for (std::size_t i = 0; i < y.size(); ++i)
    if (!std::isfinite(y[i]) && bad++ < 5) ADD_FAILURE() << "y[" << i << "] not written: " << y[i];
  EXPECT_EQ(bad, 0u);
}

class MatmulTest : public OpTest {};

TEST_P(MatmulTest, odd_sizes_every_dtype_decode_and_prefill) {
  KWAAI_SEEDED_RNG();
  const std::int64_t Ms[] = {1, 2, 7, 8, 9, 33};
  struct NK {
    std::int64_t N, K;
  };
  const NK quant_shapes[] = {{1, 32}, {7, 64}, {33, 96}, {40, 160}, {4097, 32}};
  const NK float_shapes[] = {{1, 1}, {7, 5}, {33, 33}, {3, 4097}, {40, 64}};
  const NK k_shapes[] = {{1, 256}, {7, 512}, {33, 768}, {40, 1280}, {1041, 256}};
  for (DType wt : kWeightTypes)
    for (std::int64_t M : Ms)
      for (const auto& s : kquant(wt)                ? k_shapes
                           : engine::is_quantized(wt) ? quant_shapes
                                                      : float_shapes)
        run_matmul(be(), rng, wt, M, s.N, s.K, 1 << 30);
}

// Prefill products big enough for the sgemm path (every dimension >= 32), including an
// N that is not a multiple of the 256-row dequantization tile.
TEST_P(MatmulTest, prefill_tiled_every_dtype) {
  KWAAI_SEEDED_RNG();
  for (DType wt : kWeightTypes) run_matmul(be(), rng, wt, 33, 300, kquant(wt) ? 256 : 96, 1 << 30);
  for (DType wt : kWeightTypes) run_matmul(be(), rng, wt, 64, 513, 256, 1 << 30);
}

// Llama-size decode: hidden 4096 -> FFN 14336 (gate/up) and back (down).
TEST_P(MatmulTest, decode_4096_to_14336_every_dtype) {
  KWAAI_SEEDED_RNG();
  for (DType wt : kWeightTypes) run_matmul(be(), rng, wt, 1, 14336, 4096, 128);
}

TEST_P(MatmulTest, decode_14336_to_4096_quantized_m1_and_m8) {
  KWAAI_SEEDED_RNG();
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    run_matmul(be(), rng, wt, 1, 4096, 14336, 64);
    run_matmul(be(), rng, wt, 8, 4096, 14336, 16);
  }
}

TEST_P(MatmulTest, decode_4096_to_11008_q4_0) {
  KWAAI_SEEDED_RNG();
  run_matmul(be(), rng, DType::Q4_0, 1, 11008, 4096, 128);
}

TEST_P(MatmulTest, prefill_33_tokens_4096x4096_every_dtype) {
  KWAAI_SEEDED_RNG();
  for (DType wt : kWeightTypes) run_matmul(be(), rng, wt, 33, 4096, 4096, 32);
}

TEST_P(MatmulTest, rejects_mismatched_shapes_and_dtypes) {
  auto& b = be();
  const auto x = b.alloc(DType::F32, {2, 64});
  const auto w = b.alloc(DType::F32, {16, 64});
  EXPECT_TRUE(throws_invalid("matmul", [&] { b.matmul(x, w, b.alloc(DType::F32, {2, 15})); }));
  EXPECT_TRUE(throws_invalid("matmul", [&] {
    b.matmul(x, b.alloc(DType::F32, {16, 63}), b.alloc(DType::F32, {2, 16}));
  }));
  EXPECT_TRUE(throws_invalid("matmul", [&] {
    b.matmul(b.alloc(DType::F16, {2, 64}), w, b.alloc(DType::F32, {2, 16}));
  }));
  EXPECT_TRUE(throws_invalid("matmul", [&] {
    b.matmul(x, b.alloc(DType::I32, {16, 64}), b.alloc(DType::F32, {2, 16}));
  }));
  EXPECT_TRUE(throws_invalid("matmul", [&] { b.matmul(x, w, b.alloc(DType::F32, {3, 16})); }));
}

KWAAI_INSTANTIATE_OPS(MatmulTest);

}  // namespace
}  // namespace kwaai::test
