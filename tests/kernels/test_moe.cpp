// The mixture-of-experts ops against plain references: moe_route (top-k of the router logits
// with renormalised softmax weights), gather_rows and scatter_add_rows, on every backend with
// poisoned outputs.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tests/kernels/op_test_util.hpp"

namespace kwaai::test {
namespace {

using engine::DType;

class MoeTest : public OpTest {};

// HF's Mixtral routing in double: softmax over every expert, the top k of it (ties: lower
// index), divided by their sum.
void route_reference(const std::vector<float>& logits, std::int64_t rows, std::int64_t experts,
                     std::int64_t k, std::vector<std::int32_t>& ids, std::vector<double>& w) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* l = logits.data() + r * experts;
    std::vector<std::int32_t> order(static_cast<std::size_t>(experts));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int32_t a, std::int32_t b) { return l[a] > l[b]; });
    const double mx = l[order[0]];
    double total = 0, picked = 0;
    for (std::int64_t e = 0; e < experts; ++e) total += std::exp(l[e] - mx);
    std::vector<double> p;
    for (std::int64_t j = 0; j < k; ++j) {
      p.push_back(std::exp(l[order[static_cast<std::size_t>(j)]] - mx) / total);
      picked += p.back();
      ids.push_back(order[static_cast<std::size_t>(j)]);
    }
    for (double v : p) w.push_back(v / picked);
  }
}

TEST_P(MoeTest, route_picks_the_top_k_logits_with_renormalised_softmax_weights) {
  KWAAI_SEEDED_RNG();
  struct Case {
    std::int64_t rows, experts, k;
  };
  for (const Case& c : {Case{1, 8, 2}, Case{17, 4, 2}, Case{5, 8, 8}, Case{3, 1, 1},
                        Case{300, 128, 8}, Case{2, 64, 1}}) {
    SCOPED_TRACE("rows " + std::to_string(c.rows) + " experts " + std::to_string(c.experts) +
                 " k " + std::to_string(c.k));
    auto l = rng.vec(c.rows * c.experts, -4, 4);
    if (c.experts >= 4) {  // a tie for the top place: the lower index wins
      l[1] = 9.0f;
      l[3] = 9.0f;
    }
    std::vector<std::int32_t> want_ids;
    std::vector<double> want_w;
    route_reference(l, c.rows, c.experts, c.k, want_ids, want_w);
    const auto ids = poisoned(be(), DType::I32, {c.rows, c.k});
    const auto w = poisoned(be(), DType::F32, {c.rows, c.k});
    be().moe_route(upload(be(), DType::F32, {c.rows, c.experts}, l), c.k, ids, w);
    EXPECT_EQ(download<std::int32_t>(be(), ids), want_ids);
    EXPECT_TRUE(all_close(download<float>(be(), w), want_w, 1e-6, 1e-5));
  }
}

TEST_P(MoeTest, gather_then_weighted_scatter_add_moves_exactly_the_indexed_rows) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t cols : {1, 64, 4099}) {
    SCOPED_TRACE("cols " + std::to_string(cols));
    const std::int64_t rows = 9;
    const std::vector<std::int32_t> idx{7, 0, 3, 8, 2};  // distinct, unordered
    const auto n = static_cast<std::int64_t>(idx.size());
    const auto src = rng.vec(rows * cols);
    const auto out = poisoned(be(), DType::F32, {n, cols});
    const auto idx_t = upload(be(), DType::I32, {n}, idx);
    be().gather_rows(upload(be(), DType::F32, {rows, cols}, src), idx_t, out);
    std::vector<double> want(static_cast<std::size_t>(n * cols));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t c = 0; c < cols; ++c)
        want[static_cast<std::size_t>(i * cols + c)] =
            src[static_cast<std::size_t>(idx[static_cast<std::size_t>(i)] * cols + c)];
    EXPECT_TRUE(all_close(download<float>(be(), out), want, 0, 0));

    const auto y0 = rng.vec(rows * cols);
    const auto part = rng.vec(n * cols);
    const auto scale = rng.vec(n, 0.1f, 1.0f);
    const auto y = upload(be(), DType::F32, {rows, cols}, y0);
    be().scatter_add_rows(upload(be(), DType::F32, {n, cols}, part), idx_t,
                          upload(be(), DType::F32, {n}, scale), y);
    std::vector<double> want_y(y0.begin(), y0.end());
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t c = 0; c < cols; ++c)
        want_y[static_cast<std::size_t>(idx[static_cast<std::size_t>(i)] * cols + c)] +=
            static_cast<double>(scale[static_cast<std::size_t>(i)]) *
            part[static_cast<std::size_t>(i * cols + c)];
    // Rows no index names (1, 4, 5, 6) are left exactly as they were.
    EXPECT_TRUE(all_close(download<float>(be(), y), want_y, 1e-6, 1e-6));
  }
}

TEST_P(MoeTest, rejects_bad_shapes) {
  auto& b = be();
  EXPECT_TRUE(throws_invalid("moe_route", [&] {
    b.moe_route(b.alloc(DType::F32, {2, 4}), 5, b.alloc(DType::I32, {2, 5}),
                b.alloc(DType::F32, {2, 5}));
  }));
  EXPECT_TRUE(throws_invalid("moe_route", [&] {
    b.moe_route(b.alloc(DType::F32, {2, 4}), 2, b.alloc(DType::F32, {2, 2}),
                b.alloc(DType::F32, {2, 2}));
  }));
  EXPECT_TRUE(throws_invalid("gather_rows", [&] {
    b.gather_rows(b.alloc(DType::F32, {4, 8}), b.alloc(DType::I32, {3}),
                  b.alloc(DType::F32, {3, 7}));
  }));
  EXPECT_TRUE(throws_invalid("scatter_add_rows", [&] {
    b.scatter_add_rows(b.alloc(DType::F32, {3, 8}), b.alloc(DType::I32, {3}),
                       b.alloc(DType::F32, {2}), b.alloc(DType::F32, {4, 8}));
  }));
}

TEST(MoeCpu, out_of_range_row_index_throws_and_leaves_the_output_untouched) {
  auto& b = backend_for("cpu");
  const std::vector<float> y0(8, 1.0f);
  const auto y = upload(b, DType::F32, {2, 4}, y0);
  const auto idx = upload(b, DType::I32, {1}, std::vector<std::int32_t>{2});
  EXPECT_THROW(b.scatter_add_rows(upload(b, DType::F32, {1, 4}, std::vector<float>(4, 5.0f)), idx,
                                  upload(b, DType::F32, {1}, std::vector<float>{1.0f}), y),
               std::out_of_range);
  EXPECT_EQ(download<float>(b, y), y0);
  EXPECT_THROW(b.gather_rows(y, idx, b.alloc(DType::F32, {1, 4})), std::out_of_range);
}

KWAAI_INSTANTIATE_OPS(MoeTest);

}  // namespace
}  // namespace kwaai::test
