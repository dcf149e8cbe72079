// Causal grouped-query attention over a KV cache. One work item per (batch, query
// position, query head); each computes its scores against the visible cache rows, a
// max-subtracted softmax (so large logits never overflow) and the weighted sum of values.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_ops.hpp"

namespace kwaai::engine::cpu {

void attention(const Ctx& c, const float* q, const float* k, const float* v, float* out,
               std::int64_t B, std::int64_t T, std::int64_t Hq, std::int64_t Hkv, std::int64_t D,
               std::int64_t L, std::int64_t n_past, float scale) {
  const std::int64_t group = Hq / Hkv;
  const std::int64_t items = B * T * Hq;
  c.pool.parallel_for(items, [&](std::int64_t i0, std::int64_t i1) {
    std::vector<float> scores(static_cast<std::size_t>(n_past + T));
    std::vector<float> acc(static_cast<std::size_t>(D));
    for (std::int64_t it = i0; it < i1; ++it) {
      const std::int64_t h = it % Hq;
      const std::int64_t t = (it / Hq) % T;
      const std::int64_t b = it / (Hq * T);
      const std::int64_t g = h / group;
      const float* qv = q + ((b * T + t) * Hq + h) * D;
      const std::int64_t n = n_past + t + 1;  // visible cache rows
      float mx = -INFINITY;
      for (std::int64_t j = 0; j < n; ++j) {
        const float s = c.k.dot_f32(qv, k + ((b * L + j) * Hkv + g) * D, D) * scale;
        scores[static_cast<std::size_t>(j)] = s;
        mx = std::max(mx, s);
      }
      double sum = 0.0;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (std::int64_t j = 0; j < n; ++j) {
        const float p = std::exp(scores[static_cast<std::size_t>(j)] - mx);
        sum += p;
        const float* vr = v + ((b * L + j) * Hkv + g) * D;
        float* a = acc.data();  // plain float axpy: the compiler vectorises it
        for (std::int64_t d = 0; d < D; ++d) a[d] += p * vr[d];
      }
      float* o = out + ((b * T + t) * Hq + h) * D;
      const float inv = static_cast<float>(1.0 / sum);
      for (std::int64_t d = 0; d < D; ++d) o[d] = acc[static_cast<std::size_t>(d)] * inv;
    }
  });
}

}  // namespace kwaai::engine::cpu
