// The fused matmul ops (matmul_add, matmul_many, matmul_silu_mul) against the ops they fuse,
// run on the same backend: the fused forms must compute what the composition computes (the
// CPU backend's fused kernels do the same integer sums and float operations per output, so
// within a few ulps; the Vulkan backend composes them). Every weight dtype, odd shapes, decode
// and prefill row counts, poisoned outputs.
#include <algorithm>
#include <cmath>

#include "tests/kernels/op_test_util.hpp"

namespace kwaai::test {
namespace {

using engine::DType;
using engine::Tensor;

constexpr DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = 1e-5 * (1.0 + std::fabs(want[i]));
    if (!(std::fabs(got[i] - want[i]) <= tol) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", composed " << want[i];
  }
  EXPECT_EQ(bad, 0u) << what;
}

class FusedTest : public OpTest {};

TEST_P(FusedTest, fused_matmuls_equal_their_composition) {
  KWAAI_SEEDED_RNG();
  auto& b = be();
  struct Shape3 {
    std::int64_t M, N, K;
  };
  const Shape3 shapes[] = {{1, 7, 64},   {3, 16, 32},  {8, 33, 96},
                           {9, 40, 160}, {33, 17, 64}, {40, 48, 256}};
  for (DType wt : kWeightTypes) {
    for (const auto& s : shapes) {
      SCOPED_TRACE(std::string(engine::dtype_name(wt)) + " M=" + std::to_string(s.M) +
                   " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K));
      const Tensor x = upload(b, DType::F32, {s.M, s.K}, rng.vec(s.M * s.K));
      const Tensor w1 = upload_as(b, wt, {s.N, s.K}, rng.vec(s.N * s.K));
      const Tensor w2 = upload_as(b, wt, {s.N, s.K}, rng.vec(s.N * s.K));
      const Tensor w3 = upload_as(b, wt, {s.N + 5, s.K}, rng.vec((s.N + 5) * s.K));
      auto product = [&](const Tensor& w) {
        const Tensor y = poisoned(b, DType::F32, {s.M, w.dim(0)});
        b.matmul(x, w, y);
        return y;
      };
      // matmul_add: y0 + x · w1^T.
      const auto y0 = rng.vec(s.M * s.N);
      const Tensor acc = upload(b, DType::F32, {s.M, s.N}, y0);
      b.matmul_add(x, w1, acc);
      const Tensor p1 = product(w1);
      const Tensor composed = poisoned(b, DType::F32, {s.M, s.N});
      b.add(upload(b, DType::F32, {s.M, s.N}, y0), p1, composed);
      expect_close(download<float>(b, acc), download<float>(b, composed), "matmul_add");

      // matmul_many: three products (one of another height) in one call.
      const Tensor o1 = poisoned(b, DType::F32, {s.M, s.N});
      const Tensor o2 = poisoned(b, DType::F32, {s.M, s.N});
      const Tensor o3 = poisoned(b, DType::F32, {s.M, s.N + 5});
      const Tensor* ws[] = {&w1, &w2, &w3};
      const Tensor* ys[] = {&o1, &o2, &o3};
      b.matmul_many(x, ws, ys);
      expect_close(download<float>(b, o1), download<float>(b, p1), "matmul_many[0]");
      expect_close(download<float>(b, o2), download<float>(b, product(w2)), "matmul_many[1]");
      expect_close(download<float>(b, o3), download<float>(b, product(w3)), "matmul_many[2]");

      // matmul_silu_mul: silu(x · w1^T) * (x · w2^T).
      const Tensor fused = poisoned(b, DType::F32, {s.M, s.N});
      b.matmul_silu_mul(x, w1, w2, fused);
      const Tensor ref = poisoned(b, DType::F32, {s.M, s.N});
      b.silu_mul(p1, product(w2), ref);
      expect_close(download<float>(b, fused), download<float>(b, ref), "matmul_silu_mul");
    }
  }
}

TEST_P(FusedTest, fused_matmuls_reject_mismatched_shapes) {
  auto& b = be();
  const Tensor x = b.alloc(DType::F32, {2, 64});
  const Tensor w = b.alloc(DType::F32, {16, 64});
  const Tensor w_bad = b.alloc(DType::F32, {16, 32});
  const Tensor y = b.alloc(DType::F32, {2, 16});
  EXPECT_TRUE(throws_invalid("matmul", [&] { b.matmul_add(x, w_bad, y); }));
  EXPECT_TRUE(throws_invalid("matmul", [&] { b.matmul_silu_mul(x, w, w_bad, y); }));
  const Tensor* ws[] = {&w, &w_bad};
  const Tensor* ys[] = {&y, &y};
  EXPECT_TRUE(throws_invalid("matmul", [&] { b.matmul_many(x, ws, ys); }));
  const Tensor* one[] = {&y};
  EXPECT_TRUE(throws_invalid("matmul_many", [&] { b.matmul_many(x, ws, one); }));
}

KWAAI_INSTANTIATE_OPS(FusedTest);

}  // namespace
}  // namespace kwaai::test
