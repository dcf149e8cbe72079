// Element-wise and row-wise ops against the double reference: rms_norm, layer_norm, rope,
// silu_mul, gelu, add, embedding, softmax, argmax, kv_write. Outputs are poisoned (0xFF) before
// each op.
#include <algorithm>
#include <cmath>

#include "engine/core/formats.hpp"
#include "tests/kernels/op_test_util.hpp"
#include "tests/kernels/reference.hpp"

namespace kwaai::test {
namespace {

using engine::DType;

class ElementwiseTest : public OpTest {};

const std::int64_t kOddCols[] = {1, 7, 33, 4097, 4096, 14336};

TEST_P(ElementwiseTest, rms_norm_odd_and_llama_widths) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t cols : kOddCols)
    for (std::int64_t rows : {1, 3}) {
      SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols));
      const auto x = rng.vec(rows * cols, -3, 3), w = rng.vec(cols, 0.5, 1.5);
      const auto y = poisoned(be(), DType::F32, {rows, cols});
      be().rms_norm(upload(be(), DType::F32, {rows, cols}, x), upload(be(), DType::F32, {cols}, w),
                    y, 1e-5f);
      EXPECT_TRUE(
          all_close(download<float>(be(), y), ref::rms_norm(x, w, rows, cols, 1e-5f), 1e-6, 1e-5));
    }
}

TEST_P(ElementwiseTest, layer_norm_odd_and_falcon_widths_with_an_offset_mean) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t cols :
       {std::int64_t{1}, std::int64_t{7}, std::int64_t{33}, std::int64_t{4097}, std::int64_t{8192}})
    for (std::int64_t rows : {1, 3}) {
      SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols));
      // A mean of ~20 next to a spread of ~3: a one-pass variance would lose digits here.
      auto x = rng.vec(rows * cols, -3, 3);
      for (float& v : x) v += 20.0f;
      const auto w = rng.vec(cols, 0.5, 1.5), b = rng.vec(cols, -0.5, 0.5);
      const auto y = poisoned(be(), DType::F32, {rows, cols});
      be().layer_norm(upload(be(), DType::F32, {rows, cols}, x),
                      upload(be(), DType::F32, {cols}, w), upload(be(), DType::F32, {cols}, b), y,
                      1e-5f);
      EXPECT_TRUE(all_close(download<float>(be(), y), ref::layer_norm(x, w, b, rows, cols, 1e-5f),
                            1e-5, 2e-5));
    }
}

TEST_P(ElementwiseTest, gelu_odd_sizes_and_in_place) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t n : {1, 7, 33, 4097, 28672}) {
    SCOPED_TRACE("n " + std::to_string(n));
    const auto x = rng.vec(n, -8, 8);
    const auto xt = upload(be(), DType::F32, {n}, x);
    auto out = poisoned(be(), DType::F32, {n});
    be().gelu(xt, out, engine::Gelu::erf);
    EXPECT_TRUE(all_close(download<float>(be(), out), ref::gelu(x), 1e-6, 1e-5));
    out = poisoned(be(), DType::F32, {n});
    be().gelu(xt, out, engine::Gelu::tanh);
    EXPECT_TRUE(all_close(download<float>(be(), out), ref::gelu_tanh(x), 1e-6, 1e-5));
    be().gelu(xt, xt, engine::Gelu::erf);
    EXPECT_TRUE(all_close(download<float>(be(), xt), ref::gelu(x), 1e-6, 1e-5));
  }
}

TEST_P(ElementwiseTest, bias_add_broadcasts_over_rows_of_a_view) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t cols : {1, 7, 33, 4097})
    for (std::int64_t rows : {1, 5}) {
      SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols));
      const auto y = rng.vec((rows + 2) * cols), b = rng.vec(cols);
      const auto yt = upload(be(), DType::F32, {rows + 2, cols}, y);
      // Rows 1 .. rows of a larger tensor: the view's offset must be honoured, rows 0 and
      // rows + 1 left alone.
      be().bias_add(yt.slice_rows(1, rows + 1), upload(be(), DType::F32, {cols}, b));
      std::vector<double> want(y.begin(), y.end());
      for (std::int64_t r = 1; r <= rows; ++r)
        for (std::int64_t i = 0; i < cols; ++i)
          want[static_cast<std::size_t>(r * cols + i)] += b[static_cast<std::size_t>(i)];
      EXPECT_TRUE(all_close(download<float>(be(), yt), want, 0, 1e-6));
    }
}

TEST_P(ElementwiseTest, silu_mul_and_add_odd_sizes) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t n : {1, 7, 33, 4097, 11008, 14336 * 2}) {
    SCOPED_TRACE("n " + std::to_string(n));
    const auto g = rng.vec(n, -8, 8), u = rng.vec(n, -2, 2);
    const auto gt = upload(be(), DType::F32, {n}, g), ut = upload(be(), DType::F32, {n}, u);
    auto out = poisoned(be(), DType::F32, {n});
    be().silu_mul(gt, ut, out);
    EXPECT_TRUE(all_close(download<float>(be(), out), ref::silu_mul(g, u), 1e-6, 1e-5));
    out = poisoned(be(), DType::F32, {n});
    be().add(gt, ut, out);
    std::vector<double> sum(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) sum[i] = static_cast<double>(g[i]) + u[i];
    EXPECT_TRUE(all_close(download<float>(be(), out), sum, 0, 1e-7));
  }
}

TEST_P(ElementwiseTest, add_in_place_aliasing_an_input) {
  KWAAI_SEEDED_RNG();
  const auto a = rng.vec(4097), b = rng.vec(4097);
  const auto at = upload(be(), DType::F32, {4097}, a);
  be().add(at, upload(be(), DType::F32, {4097}, b), at);
  std::vector<double> want(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) want[i] = static_cast<double>(a[i]) + b[i];
  EXPECT_TRUE(all_close(download<float>(be(), at), want, 0, 1e-7));
}

void check_rope(engine::Backend& be, Rng& rng, std::int64_t T, std::int64_t H, std::int64_t D,
                const engine::RopeConfig& cfg, std::int32_t max_pos) {
  SCOPED_TRACE("T " + std::to_string(T) + " H " + std::to_string(H) + " D " + std::to_string(D));
  const auto x = rng.vec(T * H * D, -2, 2);
  std::vector<std::int32_t> pos(static_cast<std::size_t>(T));
  for (auto& p : pos)
    p = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(max_pos));
  const auto xt = upload(be, DType::F32, {T, H, D}, x);
  be.rope(xt, upload(be, DType::I32, {T}, pos), cfg);
  // Angles reach ~1e5 rad: a float angle alone carries ~1e-2 error, so the backend must keep
  // angles in higher precision (or reduce them) to meet 1e-4.
  EXPECT_TRUE(all_close(download<float>(be, xt), ref::rope(x, pos, T, H, D, cfg), 1e-4, 1e-4));
}

TEST_P(ElementwiseTest, rope_rotate_half_plain_theta) {
  KWAAI_SEEDED_RNG();
  engine::RopeConfig cfg;
  check_rope(be(), rng, 1, 1, 2, cfg, 10);
  check_rope(be(), rng, 7, 3, 6, cfg, 100);
  check_rope(be(), rng, 33, 32, 128, cfg, 4096);
  cfg.theta = 500000.0f;
  check_rope(be(), rng, 5, 8, 128, cfg, 131072);
}

TEST_P(ElementwiseTest, rope_llama3_frequency_scaling) {
  KWAAI_SEEDED_RNG();
  engine::RopeConfig cfg;
  cfg.theta = 500000.0f;
  cfg.llama3_factor = 8.0f;
  cfg.low_freq_factor = 1.0f;
  cfg.high_freq_factor = 4.0f;
  cfg.original_max_position = 8192;
  check_rope(be(), rng, 9, 32, 128, cfg, 131072);
  check_rope(be(), rng, 4, 8, 64, cfg, 20000);
}

TEST(RopeReference, llama3_inv_freq_matches_known_values) {
  // Llama-3.1-8B (theta 500000, factor 8, low 1, high 4, original 8192), head dim 128:
  // the highest frequency is untouched, the lowest is divided by 8, and the band between
  // is blended; values computed by hand from HF's formula.
  engine::RopeConfig cfg;
  cfg.theta = 500000.0f;
  cfg.llama3_factor = 8.0f;
  const auto f = ref::inv_freq(cfg, 128);
  EXPECT_DOUBLE_EQ(f[0], 1.0);
  EXPECT_NEAR(f[63], std::pow(500000.0, -126.0 / 128.0) / 8.0, 1e-18);
  // wavelen of i = 20: 2*pi*500000^(40/128) ~ 3.75e2 < 2048 (high_freq_wavelen): kept.
  EXPECT_DOUBLE_EQ(f[20], std::pow(500000.0, -40.0 / 128.0));
  // i = 40: wavelen ~ 2*pi*500000^(80/128) ~ 2.3e4 > 8192: divided by 8.
  EXPECT_DOUBLE_EQ(f[40], std::pow(500000.0, -80.0 / 128.0) / 8.0);
  // i = 30: wavelen ~ 2.9e3, in [2048, 8192]: blended.
  const double base = std::pow(500000.0, -60.0 / 128.0);
  const double wl = 2 * M_PI / base, smooth = (8192.0 / wl - 1.0) / 3.0;
  EXPECT_NEAR(f[30], (1 - smooth) * base / 8 + smooth * base, 1e-15);
}

TEST_P(ElementwiseTest, embedding_every_table_dtype) {
  KWAAI_SEEDED_RNG();
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K,
                   DType::Q5_K, DType::Q6_K}) {
    SCOPED_TRACE(std::string(engine::dtype_name(dt)));
    const std::int64_t block = engine::format_info(dt).block_elems;
    const std::int64_t V = 1000, K = block == 1 ? 33 : block == 32 ? 64 : 512;
    const auto table = rng.vec(V * K);
    std::vector<float> dec;
    const auto table_t = upload_as(be(), dt, {V, K}, table, &dec);
    std::vector<std::int32_t> ids = {0, 999, 5, 5, static_cast<std::int32_t>(rng.next() % V)};
    const auto T = static_cast<std::int64_t>(ids.size());
    const auto out = poisoned(be(), DType::F32, {T, K});
    be().embedding(upload(be(), DType::I32, {T}, ids), table_t, out);
    std::vector<double> want;
    for (auto id : ids)
      for (std::int64_t k = 0; k < K; ++k)
        want.push_back(dec[static_cast<std::size_t>(id * K + k)]);
    EXPECT_TRUE(all_close(download<float>(be(), out), want, 0, 0));
  }
}

TEST_P(ElementwiseTest, embedding_out_of_range_id_throws_out_of_range_naming_it) {
  if (be().kind() != engine::BackendKind::Cpu) GTEST_SKIP() << "devices write a zero row instead";
  const auto table = be().alloc(DType::F32, {10, 4});
  const auto out = be().alloc(DType::F32, {2, 4});
  for (std::int32_t bad : {10, -1}) {
    std::vector<std::int32_t> ids{3, bad};
    try {
      be().embedding(upload(be(), DType::I32, {2}, ids), table, out);
      ADD_FAILURE() << "no exception for id " << bad;
    } catch (const std::out_of_range& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("embedding"), std::string::npos) << e.what();
    }
  }
}

TEST_P(ElementwiseTest, softmax_rows_including_large_logits) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t cols : {1, 7, 33, 4097, 32000}) {
    SCOPED_TRACE("cols " + std::to_string(cols));
    auto x = rng.vec(3 * cols, -20, 20);
    x[0] = 1e4f;  // would overflow exp() without the max subtraction
    const auto out = poisoned(be(), DType::F32, {3, cols});
    be().softmax(upload(be(), DType::F32, {3, cols}, x), out);
    EXPECT_TRUE(all_close(download<float>(be(), out), ref::softmax(x, 3, cols), 1e-7, 1e-5));
  }
}

TEST_P(ElementwiseTest, argmax_rows_ties_to_lowest_index) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t cols : {1, 7, 33, 4097, 128256}) {
    SCOPED_TRACE("cols " + std::to_string(cols));
    auto x = rng.vec(4 * cols);
    if (cols > 10) {  // row 1: a tie between two maxima
      x[static_cast<std::size_t>(cols + 9)] = 5.0f;
      x[static_cast<std::size_t>(cols + 3)] = 5.0f;
    }
    const auto out = poisoned(be(), DType::I32, {4});
    be().argmax(upload(be(), DType::F32, {4, cols}, x), out);
    EXPECT_EQ(download<std::int32_t>(be(), out), ref::argmax(x, 4, cols));
  }
}

TEST_P(ElementwiseTest, kv_write_places_rows_at_position) {
  KWAAI_SEEDED_RNG();
  const std::int64_t B = 2, L = 16, H = 8, D = 128, T = 5, pos = 9;
  const auto cache_init = rng.vec(B * L * H * D);
  const auto src = rng.vec(B * T * H * D);
  const auto cache = upload(be(), DType::F32, {B, L, H, D}, cache_init);
  be().kv_write(upload(be(), DType::F32, {B, T, H, D}, src), cache, pos);
  std::vector<double> want(cache_init.begin(), cache_init.end());
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t i = 0; i < H * D; ++i)
        want[static_cast<std::size_t>(((b * L) + pos + t) * H * D + i)] =
            src[static_cast<std::size_t>((b * T + t) * H * D + i)];
  EXPECT_TRUE(all_close(download<float>(be(), cache), want, 0, 0));
  EXPECT_TRUE(throws_invalid("kv_write", [&] {
    be().kv_write(upload(be(), DType::F32, {B, T, H, D}, src), cache, 12);
  }));
}

TEST_P(ElementwiseTest, rejects_mismatched_shapes_and_dtypes) {
  auto& b = be();
  const auto a = b.alloc(DType::F32, {4, 8});
  EXPECT_TRUE(
      throws_invalid("rms_norm", [&] { b.rms_norm(a, b.alloc(DType::F32, {7}), a, 1e-5f); }));
  EXPECT_TRUE(throws_invalid("silu_mul", [&] { b.silu_mul(a, b.alloc(DType::F32, {8, 4}), a); }));
  EXPECT_TRUE(throws_invalid("layer_norm", [&] {
    b.layer_norm(a, b.alloc(DType::F32, {8}), b.alloc(DType::F32, {7}), a, 1e-5f);
  }));
  EXPECT_TRUE(throws_invalid("gelu", [&] {
    b.gelu(a, b.alloc(DType::F32, {8, 4}), engine::Gelu::erf);
  }));
  EXPECT_TRUE(throws_invalid("bias_add", [&] { b.bias_add(a, b.alloc(DType::F32, {4})); }));
  EXPECT_TRUE(throws_invalid("add", [&] { b.add(a, b.alloc(DType::F16, {4, 8}), a); }));
  EXPECT_TRUE(throws_invalid("softmax", [&] { b.softmax(a, b.alloc(DType::F32, {4, 9})); }));
  EXPECT_TRUE(throws_invalid("argmax", [&] { b.argmax(a, b.alloc(DType::F32, {4})); }));
  EXPECT_TRUE(throws_invalid("rope", [&] {
    b.rope(b.alloc(DType::F32, {2, 1, 7}), b.alloc(DType::I32, {2}), {});
  }));
  EXPECT_TRUE(throws_invalid("rope", [&] {
    b.rope(b.alloc(DType::F32, {2, 1, 8}), b.alloc(DType::I32, {3}), {});
  }));
  EXPECT_TRUE(throws_invalid("embedding", [&] {
    b.embedding(b.alloc(DType::F32, {2}), b.alloc(DType::F32, {10, 8}),
                b.alloc(DType::F32, {2, 8}));
  }));
  EXPECT_TRUE(throws_invalid("embedding", [&] {
    b.embedding(b.alloc(DType::I32, {2}), b.alloc(DType::F32, {10, 8}),
                b.alloc(DType::F32, {2, 9}));
  }));
}

KWAAI_INSTANTIATE_OPS(ElementwiseTest);

}  // namespace
}  // namespace kwaai::test
