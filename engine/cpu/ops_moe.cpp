// Mixture-of-experts helpers: the router's top-k with renormalised softmax weights, and the
// row gather / weighted scatter-add that let each expert run one dense matmul over just the
// rows routed to it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "engine/cpu/cpu_ops.hpp"

namespace kwaai::engine::cpu {

void moe_route(const Ctx& c, const float* logits, std::int64_t rows, std::int64_t experts,
               std::int64_t k, std::int32_t* ids, float* weights) {
  c.pool.parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<std::int32_t> order(static_cast<std::size_t>(experts));
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* l = logits + r * experts;
      std::iota(order.begin(), order.end(), 0);
      // NaN ranks below every number so the order stays a strict weak ordering.
      auto key = [&](std::int32_t e) { return std::isnan(l[e]) ? -INFINITY : l[e]; };
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](std::int32_t a, std::int32_t b) {
                          return key(a) > key(b) || (key(a) == key(b) && a < b);
                        });
      // HF: softmax over all experts in float32, the top-k of it, divided by their sum.
      const float mx = key(order[0]);
      float total = 0.0f;
      for (std::int64_t e = 0; e < experts; ++e)
        total += std::exp(key(static_cast<std::int32_t>(e)) - mx);
      float picked = 0.0f;
      for (std::int64_t j = 0; j < k; ++j) {
        const std::int32_t e = order[static_cast<std::size_t>(j)];
        ids[r * k + j] = e;
        weights[r * k + j] = std::exp(key(e) - mx) / total;
        picked += weights[r * k + j];
      }
      for (std::int64_t j = 0; j < k; ++j) weights[r * k + j] /= picked;
    }
  });
}

void gather_rows(const float* src, const std::int32_t* idx, float* out, std::int64_t n,
                 std::int64_t cols) {
  for (std::int64_t i = 0; i < n; ++i)
    std::memcpy(out + i * cols, src + static_cast<std::int64_t>(idx[i]) * cols,
                static_cast<std::size_t>(cols) * sizeof(float));
}

void scatter_add_rows(const float* src, const std::int32_t* idx, const float* scale, float* y,
                      std::int64_t n, std::int64_t cols) {
  for (std::int64_t i = 0; i < n; ++i) {
    float* yr = y + static_cast<std::int64_t>(idx[i]) * cols;
    const float* sr = src + i * cols;
    const float s = scale[i];
    for (std::int64_t j = 0; j < cols; ++j) yr[j] += s * sr[j];
  }
}

}  // namespace kwaai::engine::cpu
