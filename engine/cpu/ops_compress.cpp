// hivemind BLOCKWISE_8BIT (bitsandbytes quantize_blockwise, CPU semantics) and top-k by
// magnitude.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/core/op_checks.hpp"
#include "engine/cpu/cpu_ops.hpp"

namespace kwaai::engine::cpu {

namespace {
constexpr std::int64_t kBlock = checks::kBlockwise8Block;

// Nearest codebook entry to v, ties to the lower index (the codebook is sorted ascending).
// Like bitsandbytes' CPU kernel: find the entry at or left of v, then step right only if
// the right neighbour is strictly closer.
std::uint8_t nearest_code(const float* code, float v) {
  const float* it = std::upper_bound(code, code + 256, v);
  std::int64_t lo = (it - code) - 1;
  if (lo < 0) return 0;
  if (lo < 255 && std::fabs(v - code[lo + 1]) < std::fabs(v - code[lo])) ++lo;
  return static_cast<std::uint8_t>(lo);
}
}  // namespace

void blockwise8_quantize(const Ctx& c, const float* x, const float* code, float* absmax,
                         std::uint8_t* codes, std::int64_t n) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  c.pool.parallel_for(blocks, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
      float amax = 0.0f;
      for (std::int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(x[i]));
      absmax[b] = amax;
      const float div = amax == 0.0f ? 1.0f : amax;
      for (std::int64_t i = i0; i < i1; ++i) codes[i] = nearest_code(code, x[i] / div);
    }
  });
}

void blockwise8_dequantize(const Ctx& c, const std::uint8_t* codes, const float* absmax,
                           const float* code, float* out, std::int64_t n) {
  c.pool.parallel_for(
      n,
      [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) out[i] = code[codes[i]] * absmax[i / kBlock];
      },
      kBlock);
}

void topk(const Ctx& c, const float* x, std::int64_t rows, std::int64_t cols, std::int64_t k,
          std::int32_t* indices, float* values) {
  c.pool.parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<std::int32_t> idx(static_cast<std::size_t>(cols));
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                        [&](std::int32_t a, std::int32_t b) {
                          // NaN ranks below every number so the order stays a strict weak ordering.
                          const float fa = std::isnan(xr[a]) ? -1.0f : std::fabs(xr[a]);
                          const float fb = std::isnan(xr[b]) ? -1.0f : std::fabs(xr[b]);
                          return fa > fb || (fa == fb && a < b);
                        });
      for (std::int64_t j = 0; j < k; ++j) {
        indices[r * k + j] = idx[static_cast<std::size_t>(j)];
        values[r * k + j] = xr[idx[static_cast<std::size_t>(j)]];
      }
    }
  });
}

}  // namespace kwaai::engine::cpu
