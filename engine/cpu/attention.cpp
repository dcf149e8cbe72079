// Causal grouped-query attention over a KV cache, in two forms.
//
// Prefill (T >= kBlockedMinTokens): blocked, flash-attention style. The visible keys of each
// (sequence, KV head) are first transposed into chunks of 16 (one pass, shared by every query
// block), then each work item takes a block of query positions with all the query heads that
// share the KV head (~32 rows) and walks the keys in blocks of 64: scores by the table's
// attn_scores (vector over keys, no horizontal sums), an online softmax (running max and sum per
// row, earlier rows rescaled when the max grows), and the value rows accumulated by
// attn_accumulate. Nothing of size T x L is formed; each key block is read from L2 once per
// query block rather than once per query, so a 2,048-token prompt's attention costs a small
// fraction of its matmuls.
//
// Decode and short steps: one work item per (sequence, query position, KV head); the group's
// query heads meet each cache row together (one K row, all its queries, while it is in L1),
// with a max-subtracted softmax over the full row of scores.
//
// Prefill is causal, so later positions see more rows; items are visited in an order that
// alternates early and late positions, so the pool's contiguous chunks carry equal work.
//
// ALiBi (Bloom) adds slope_h * (key - query position) to each visible score before the softmax,
// on both paths.
//
// A sliding window W > 0 (Mistral) keeps, for the query at position p, the rows
// max(0, p - W + 1) .. p: the row path scores only those, the blocked path starts at the key
// block holding the block's earliest visible row and masks each row's leading keys.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/cpu_ops.hpp"

namespace kwaai::engine::cpu {

namespace {

constexpr std::int64_t kBlockedMinTokens = 8;
// Decode over a long cache takes the blocked path too: transposing K once per step (one more
// pass over it) costs less than a horizontal sum per key and head. At 512 keys this took an
// 8B-shaped decode step's attention from 0.53 to 0.43 ms per block.
constexpr std::int64_t kBlockedMinKeys = 128;
constexpr std::int64_t kKeyBlock = 64;
constexpr std::int64_t kChunk = 16;  // keys per transposed chunk (KernelTable::attn_scores)
constexpr std::int64_t kTargetRows = 32;

// 0, n-1, 1, n-2, ...: pairs an early (cheap) causal position with a late (expensive) one.
std::int64_t balanced(std::int64_t u, std::int64_t n) {
  return u % 2 == 0 ? u / 2 : n - 1 - u / 2;
}

// First visible row for the query at cache position `pos` (0 without a window).
std::int64_t first_visible(std::int64_t pos, std::int64_t window) {
  return window > 0 ? std::max<std::int64_t>(0, pos - window + 1) : 0;
}

void attention_rows(const Ctx& c, const float* q, const float* k, const float* v, float* out,
                    std::int64_t B, std::int64_t T, std::int64_t Hq, std::int64_t Hkv,
                    std::int64_t D, std::int64_t L, std::int64_t n_past, float scale,
                    std::int64_t window, const AlibiSlopes& alibi) {
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
          const std::int64_t t = balanced((it / Hkv) % T, T);
          const std::int64_t b = it / (Hkv * T);
          const std::int64_t lo = first_visible(n_past + t, window);
          const std::int64_t n = n_past + t + 1 - lo;  // visible cache rows lo .. n_past + t
          const float* q0 = q + ((b * T + t) * Hq + g * group) * D;
          for (std::int64_t j = 0; j < n; ++j) {
            const float* kr = k + ((b * L + lo + j) * Hkv + g) * D;
            for (std::int64_t h = 0; h < group; ++h)
              scores[static_cast<std::size_t>(h * n + j)] = c.k.dot_f32(q0 + h * D, kr, D) * scale;
          }
          if (alibi.n > 0) {
            for (std::int64_t h = 0; h < group; ++h) {
              const float slope = alibi(g * group + h);
              float* row = scores.data() + h * n;
              // Row lo + j seen from position n_past + t: the bias slope * (key - query).
              for (std::int64_t j = 0; j < n; ++j)
                row[j] += slope * static_cast<float>(lo + j - (n_past + t));
            }
          }
          for (std::int64_t h = 0; h < group; ++h) {
            float* row = scores.data() + h * n;
            const float mx = *std::max_element(row, row + n);
            inv[static_cast<std::size_t>(h)] = 1.0f / c.k.exp_sum_f32(row, mx, n);
          }
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (std::int64_t j = 0; j < n; ++j) {
            const float* vr = v + ((b * L + lo + j) * Hkv + g) * D;
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

void attention_blocked(const Ctx& c, const float* q, const float* k, const float* v, float* out,
                       std::int64_t B, std::int64_t T, std::int64_t Hq, std::int64_t Hkv,
                       std::int64_t D, std::int64_t L, std::int64_t n_past, float scale,
                       std::int64_t window, const AlibiSlopes& alibi) {
  const std::int64_t group = Hq / Hkv;
  const std::int64_t keys = n_past + T;  // visible to the last query
  const std::int64_t chunks = (keys + kChunk - 1) / kChunk;
  const std::int64_t ldk = Hkv * D;
  // Phase 1: K^T in chunks of 16 keys per (sequence, KV head), zero past the last key.
  thread_local std::vector<float> kt_store;
  std::vector<float>& kt = kt_store;  // named: workers must use the caller's buffer
  const std::int64_t per_head = chunks * D * kChunk;
  kt.resize(static_cast<std::size_t>(B * Hkv * per_head));
  c.pool.parallel_for(
      B * Hkv * chunks,
      [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) {
          const std::int64_t ch = i % chunks, bg = i / chunks;
          const std::int64_t b = bg / Hkv, g = bg % Hkv;
          float* dst = kt.data() + bg * per_head + ch * D * kChunk;
          for (std::int64_t jj = 0; jj < kChunk; ++jj) {
            const std::int64_t j = ch * kChunk + jj;
            const float* src = k + (b * L + j) * ldk + g * D;
            for (std::int64_t d = 0; d < D; ++d) dst[d * kChunk + jj] = j < keys ? src[d] : 0.0f;
          }
        }
      },
      std::max<std::int64_t>(1, kMinChunkWork / (kChunk * D)));

  // Phase 2: query blocks of tq positions x the group's heads.
  const std::int64_t tq = std::max<std::int64_t>(1, kTargetRows / group);
  const std::int64_t qblocks = (T + tq - 1) / tq;
  const std::int64_t items = B * Hkv * qblocks;
  const std::int64_t rows_max = tq * group;
  const std::int64_t per_item = 2 * rows_max * D * (n_past + T / 2 + 1);
  c.pool.parallel_for(
      items,
      [&](std::int64_t i0, std::int64_t i1) {
        // Per-thread buffers kept across calls (a decode step calls this once per block).
        thread_local std::vector<float> qb, ob, s, mx, sum;
        qb.resize(static_cast<std::size_t>(rows_max * D));
        ob.resize(qb.size());
        s.resize(static_cast<std::size_t>(rows_max * kKeyBlock));
        mx.resize(static_cast<std::size_t>(rows_max));
        sum.resize(mx.size());
        for (std::int64_t it = i0; it < i1; ++it) {
          const std::int64_t qbi = balanced(it % qblocks, qblocks);
          const std::int64_t bg = it / qblocks;
          const std::int64_t b = bg / Hkv, g = bg % Hkv;
          const std::int64_t t0 = qbi * tq, nt = std::min(tq, T - t0);
          const std::int64_t rows = nt * group;
          // Row r = (position t0 + r / group, head g * group + r % group), pre-scaled.
          for (std::int64_t r = 0; r < rows; ++r) {
            const float* src = q + ((b * T + t0 + r / group) * Hq + g * group + r % group) * D;
            for (std::int64_t d = 0; d < D; ++d)
              qb[static_cast<std::size_t>(r * D + d)] = src[d] * scale;
          }
          std::fill(ob.begin(), ob.begin() + rows * D, 0.0f);
          std::fill(mx.begin(), mx.begin() + rows, -std::numeric_limits<float>::infinity());
          std::fill(sum.begin(), sum.begin() + rows, 0.0f);
          const std::int64_t last = n_past + t0 + nt;  // keys visible to the block's last row
          // The block's first row sees the earliest keys; blocks wholly before it are skipped.
          const std::int64_t first = first_visible(n_past + t0, window) / kKeyBlock * kKeyBlock;
          const float* kth = kt.data() + bg * per_head;
          for (std::int64_t j0 = first; j0 < last; j0 += kKeyBlock) {
            const int nk = static_cast<int>(std::min(kKeyBlock, last - j0));
            c.k.attn_scores(qb.data(), static_cast<int>(rows), kth + (j0 / kChunk) * D * kChunk, nk,
                            D, s.data(), kKeyBlock);
            for (std::int64_t r = 0; r < rows; ++r) {
              float* sr = s.data() + r * kKeyBlock;
              // Causal: row r sees keys up to n_past + its position, a prefix of the block.
              const std::int64_t pos = n_past + t0 + r / group;
              const std::int64_t vis = std::clamp<std::int64_t>(pos + 1 - j0, 0, nk);
              // Sliding window: the row's keys before first_visible(pos) are masked too.
              const std::int64_t from =
                  std::clamp<std::int64_t>(first_visible(pos, window) - j0, 0, vis);
              std::fill(sr + vis, sr + nk, 0.0f);
              std::fill(sr, sr + from, 0.0f);
              if (vis == from) continue;
              if (alibi.n > 0) {
                const float slope = alibi(g * group + r % group);
                for (std::int64_t jj = from; jj < vis; ++jj)
                  sr[jj] += slope * static_cast<float>(j0 + jj - pos);
              }
              const float bmax = *std::max_element(sr + from, sr + vis);
              float& m = mx[static_cast<std::size_t>(r)];
              if (bmax > m) {
                // The running max grows: rescale what was accumulated under the old one.
                const float corr = std::isinf(m) ? 0.0f : std::exp(m - bmax);
                sum[static_cast<std::size_t>(r)] *= corr;
                float* o = ob.data() + r * D;
                for (std::int64_t d = 0; d < D; ++d) o[d] *= corr;
                m = bmax;
              }
              sum[static_cast<std::size_t>(r)] += c.k.exp_sum_f32(sr + from, m, vis - from);
            }
            c.k.attn_accumulate(s.data(), kKeyBlock, static_cast<int>(rows),
                                v + (b * L + j0) * ldk + g * D, ldk, nk, D, ob.data());
          }
          for (std::int64_t r = 0; r < rows; ++r) {
            float* o = out + ((b * T + t0 + r / group) * Hq + g * group + r % group) * D;
            const float inv = 1.0f / sum[static_cast<std::size_t>(r)];
            for (std::int64_t d = 0; d < D; ++d)
              o[d] = ob[static_cast<std::size_t>(r * D + d)] * inv;
          }
        }
      },
      std::max<std::int64_t>(1, kMinChunkWork / std::max<std::int64_t>(1, per_item)));
}

}  // namespace

void attention(const Ctx& c, const float* q, const float* k, const float* v, float* out,
               std::int64_t B, std::int64_t T, std::int64_t Hq, std::int64_t Hkv, std::int64_t D,
               std::int64_t L, std::int64_t n_past, float scale, std::int64_t window,
               const AlibiSlopes& alibi) {
  if (T >= kBlockedMinTokens || n_past + T >= kBlockedMinKeys)
    attention_blocked(c, q, k, v, out, B, T, Hq, Hkv, D, L, n_past, scale, window, alibi);
  else
    attention_rows(c, q, k, v, out, B, T, Hq, Hkv, D, L, n_past, scale, window, alibi);
}

}  // namespace kwaai::engine::cpu
