// The fused ops (matmul_add, matmul_many, matmul_silu_mul; rope_kv_write) against the ops they
// fuse, run on the same backend: the fused forms must compute what the composition computes (the
// CPU backend's fused kernels do the same integer sums and float operations per output, so
// within a few ulps; the Vulkan backend composes them). Every weight dtype, odd shapes, decode
// and prefill row counts, poisoned outputs.
#include <span>
#include <algorithm>
#include <cmath>

#include "engine/core/formats.hpp"
#include "tests/kernels/op_test_util.hpp"
#include "tests/kernels/reference.hpp"

namespace kwaai::test {
namespace {

using engine::DType;
using engine::Tensor;

constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                                  DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

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
  // K-quants: rows of whole 256-value super-blocks.
  const Shape3 k_shapes[] = {{1, 7, 256}, {8, 33, 512}, {9, 40, 256}, {40, 48, 768}};
  for (DType wt : kWeightTypes) {
    const bool kq = engine::format_info(wt).block_elems == 256;
    for (const auto& s : kq ? std::span<const Shape3>(k_shapes) : std::span<const Shape3>(shapes)) {
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

// rope_kv_write: q and k rotated in place, rotated k and v written into the caches at pos —
// against the four ops it fuses on the same backend, and against the double reference. The
// caches start with random values (rows it must not touch keep them), views of a larger q/k/v
// (as the block's per-segment row views) and segments of several rows, decode (T = 1) and an
// 8B-shaped head layout.
TEST_P(FusedTest, rope_kv_write_equals_its_composition) {
  KWAAI_SEEDED_RNG();
  auto& b = be();
  struct Case {
    std::int64_t B, T, Hq, Hkv, D, L, pos, lead;  // lead: rows of q/k/v before the segment
  };
  const Case cases[] = {{1, 1, 1, 1, 2, 1, 0, 0},
                        {2, 3, 6, 2, 10, 11, 5, 2},
                        {1, 7, 4, 4, 8, 9, 2, 1},
                        {3, 1, 6, 3, 16, 40, 39, 0},
                        {1, 1, 32, 8, 128, 600, 517, 3}};
  engine::RopeConfig cfg;
  cfg.theta = 500000.0f;
  cfg.llama3_factor = 8.0f;
  for (const auto& c : cases) {
    SCOPED_TRACE("B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) +
                 " Hq=" + std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) +
                 " D=" + std::to_string(c.D) + " pos=" + std::to_string(c.pos));
    const std::int64_t rows = c.B * c.T, all = rows + c.lead;
    const auto q0 = rng.vec(all * c.Hq * c.D), k0 = rng.vec(all * c.Hkv * c.D),
               v0 = rng.vec(all * c.Hkv * c.D);
    const auto kc0 = rng.vec(c.B * c.L * c.Hkv * c.D), vc0 = rng.vec(c.B * c.L * c.Hkv * c.D);
    std::vector<std::int32_t> pos(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r)
      pos[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(c.pos + r % c.T);
    struct Set {
      Tensor q, k, v, kc, vc, p;
    };
    auto make = [&] {
      return Set{upload(b, DType::F32, {all, c.Hq * c.D}, q0),
                 upload(b, DType::F32, {all, c.Hkv * c.D}, k0),
                 upload(b, DType::F32, {all, c.Hkv * c.D}, v0),
                 upload(b, DType::F32, {c.B, c.L, c.Hkv, c.D}, kc0),
                 upload(b, DType::F32, {c.B, c.L, c.Hkv, c.D}, vc0),
                 upload(b, DType::I32, {rows}, pos)};
    };
    auto seg = [&](const Tensor& t, std::int64_t heads) {
      return t.slice_rows(c.lead, all).reshaped({c.B, c.T, heads, c.D});
    };
    Set fused = make(), composed = make();
    b.rope_kv_write(seg(fused.q, c.Hq), seg(fused.k, c.Hkv), seg(fused.v, c.Hkv), fused.p, cfg,
                    fused.kc, fused.vc, c.pos);
    b.rope(seg(composed.q, c.Hq).reshaped({rows, c.Hq, c.D}), composed.p, cfg);
    b.rope(seg(composed.k, c.Hkv).reshaped({rows, c.Hkv, c.D}), composed.p, cfg);
    b.kv_write(seg(composed.k, c.Hkv), composed.kc, c.pos);
    b.kv_write(seg(composed.v, c.Hkv), composed.vc, c.pos);
    expect_close(download<float>(b, fused.q), download<float>(b, composed.q), "q");
    expect_close(download<float>(b, fused.k), download<float>(b, composed.k), "k");
    expect_close(download<float>(b, fused.v), download<float>(b, composed.v), "v");
    expect_close(download<float>(b, fused.kc), download<float>(b, composed.kc), "k_cache");
    expect_close(download<float>(b, fused.vc), download<float>(b, composed.vc), "v_cache");
    // The double reference for the rotated segment rows and the cache rows written.
    auto rows_of = [&](const std::vector<float>& v, std::int64_t width) {
      return std::vector<float>(v.begin() + c.lead * width, v.end());
    };
    const auto q_ref = ref::rope(rows_of(q0, c.Hq * c.D), pos, rows, c.Hq, c.D, cfg);
    const auto k_ref = ref::rope(rows_of(k0, c.Hkv * c.D), pos, rows, c.Hkv, c.D, cfg);
    const auto q_got = rows_of(download<float>(b, fused.q), c.Hq * c.D);
    EXPECT_TRUE(all_close(q_got, q_ref, 1e-4, 1e-4));
    const auto kc_got = download<float>(b, fused.kc), vc_got = download<float>(b, fused.vc);
    std::vector<double> kc_want(kc0.begin(), kc0.end()), vc_want(vc0.begin(), vc0.end());
    const std::int64_t R = c.Hkv * c.D;
    for (std::int64_t bb = 0; bb < c.B; ++bb)
      for (std::int64_t t = 0; t < c.T; ++t)
        for (std::int64_t i = 0; i < R; ++i) {
          const auto dst = static_cast<std::size_t>((bb * c.L + c.pos + t) * R + i);
          const auto src = static_cast<std::size_t>((bb * c.T + t) * R + i);
          kc_want[dst] = k_ref[src];
          vc_want[dst] = v0[static_cast<std::size_t>(c.lead * R) + src];
        }
    EXPECT_TRUE(all_close(kc_got, kc_want, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(vc_got, vc_want, 0, 0));
  }
  // Shapes that do not fit are refused with the op's name.
  const Tensor q = b.alloc(DType::F32, {1, 2, 4, 8}), k = b.alloc(DType::F32, {1, 2, 2, 8});
  const Tensor kc = b.alloc(DType::F32, {1, 4, 2, 8}), p2 = b.alloc(DType::I32, {2});
  EXPECT_TRUE(throws_invalid("rope_kv_write", [&] {
    b.rope_kv_write(q, k, k, b.alloc(DType::I32, {3}), cfg, kc, kc, 0);
  }));
  EXPECT_TRUE(throws_invalid("rope_kv_write", [&] {
    b.rope_kv_write(q, b.alloc(DType::F32, {1, 3, 2, 8}), b.alloc(DType::F32, {1, 3, 2, 8}), p2,
                    cfg, kc, kc, 0);
  }));
  EXPECT_TRUE(throws_invalid("kv_write", [&] { b.rope_kv_write(q, k, k, p2, cfg, kc, kc, 3); }));
}

KWAAI_INSTANTIATE_OPS(FusedTest);

}  // namespace
}  // namespace kwaai::test
