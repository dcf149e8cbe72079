// Causal grouped-query attention over a KV cache. One work item per (batch, query position,
// KV head): the query heads that share a KV head are done together, so each cache row is
// read once per group (one K row meets all of the group's queries while it is in L1) rather
// than once per query head. Scores get a max-subtracted softmax (large logits never
// overflow), and the weighted sum of values accumulates per head in a small f32 buffer.
//
// Prefill is causal, so later positions see more rows; items are visited in an order that
// alternates early and late positions, so the pool's contiguous chunks carry equal work.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_ops.hpp"

namespace kwaai::engine::cpu {

void attention(const Ctx& c, const float* q, const float* k, const float* v, float* out,
               std::int64_t B, std::int64_t T, std::int64_t Hq, std::int64_t Hkv, std::int64_t D,
               std::int64_t L, std::int64_t n_past, float scale) {
  const std::int64_t group = Hq / Hkv;
  const std::int64_t items = B * T * Hkv;
  // Items per chunk: at least kMinChunkWork multiply-adds (a tiny model's decode step runs on
  // the calling thread; an 8B one still splits its 8 KV heads across the pool).
  const std::int64_t per_item = std::max<std::int64_t>(1, 2 * group * D * (n_past + T));
  const std::int64_t grain = std::max<std::int64_t>(1, kMinChunkWork / per_item);
  c.pool.parallel_for(
      items,
      [&](std::int64_t i0, std::int64_t i1) {
        std::vector<float> scores(static_cast<std::size_t>(group * (n_past + T)));
        std::vector<float> acc(static_cast<std::size_t>(group * D));
        std::vector<float> inv(static_cast<std::size_t>(group));
        for (std::int64_t it = i0; it < i1; ++it) {
          const std::int64_t g = it % Hkv;
          const std::int64_t u = (it / Hkv) % T;
          const std::int64_t t = u % 2 == 0 ? u / 2 : T - 1 - u / 2;  // 0, T-1, 1, T-2, ...
          const std::int64_t b = it / (Hkv * T);
          const std::int64_t n = n_past + t + 1;  // visible cache rows
          const float* q0 = q + ((b * T + t) * Hq + g * group) * D;
          for (std::int64_t j = 0; j < n; ++j) {
            const float* kr = k + ((b * L + j) * Hkv + g) * D;
            for (std::int64_t h = 0; h < group; ++h)
              scores[static_cast<std::size_t>(h * n + j)] = c.k.dot_f32(q0 + h * D, kr, D) * scale;
          }
          for (std::int64_t h = 0; h < group; ++h) {
            float* row = scores.data() + h * n;
            const float mx = *std::max_element(row, row + n);
            inv[static_cast<std::size_t>(h)] = 1.0f / c.k.exp_sum_f32(row, mx, n);
          }
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (std::int64_t j = 0; j < n; ++j) {
            const float* vr = v + ((b * L + j) * Hkv + g) * D;
            for (std::int64_t h = 0; h < group; ++h)
              c.k.axpy_f32(scores[static_cast<std::size_t>(h * n + j)], vr, acc.data() + h * D, D);
          }
          for (std::int64_t h = 0; h < group; ++h) {
            float* o = out + ((b * T + t) * Hq + g * group + h) * D;
            const float s = inv[static_cast<std::size_t>(h)];
            for (std::int64_t d = 0; d < D; ++d)
              o[d] = acc[static_cast<std::size_t>(h * D + d)] * s;
          }
        }
      },
      grain);
}

}  // namespace kwaai::engine::cpu
