// matmul for the CPU backend.
//
// Decode (M <= 8) is memory-bound: each weight byte is read once, so the kernels work
// directly on the stored format. Quantized weights meet an activation quantized once to
// 8-bit blocks (integer dot products, VNNI where available); float weights are widened in
// registers. Weight rows are split across the pool in contiguous ranges so each thread
// streams its own part of memory.
//
// Prefill (M > 8) is compute-bound: OpenBLAS sgemm does the work. Non-f32 weights are
// widened to f32 a tile of rows at a time (thread-local scratch) and each tile is one
// sgemm writing its column block of y.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "engine/cpu/cpu_ops.hpp"

namespace kwaai::engine::cpu {

namespace {

// Rows of f32 weights per sgemm: every call re-packs the whole activation x[M, K], so tiles
// are made as large as a bounded scratch allows (16 MiB: 1024 rows at K = 4096, 292 at
// 14336), never fewer than 256.
constexpr std::int64_t kPrefillTileBytes = std::int64_t{16} << 20;
constexpr std::int64_t kPrefillMinTileRows = 256;
std::int64_t prefill_tile_rows(std::int64_t K) {
  return std::max(kPrefillMinTileRows, kPrefillTileBytes / (K * 4));
}
constexpr std::int64_t kSgemmMinDim = 32;

// Decode mat-vec rows per chunk: at least 16, and at least kMinChunkWork weights, so a small
// matrix (a tiny model's, or a K/V projection of a few rows) runs on the calling thread.
std::int64_t matvec_grain(std::int64_t M, std::int64_t K) {
  return std::max<std::int64_t>(16, kMinChunkWork / std::max<std::int64_t>(1, M * K));
}

std::size_t row_bytes(DType t, std::int64_t K) {
  return dtype_bytes(t, K);
}

void widen_row(const KernelTable& k, DType t, const void* src, float* dst, std::int64_t K) {
  switch (t) {
    case DType::F16:
      k.f16_to_f32_row(static_cast<const std::uint16_t*>(src), dst, K);
      return;
    case DType::BF16:
      k.bf16_to_f32_row(static_cast<const std::uint16_t*>(src), dst, K);
      return;
    default:
      to_f32(t, src, dst, K);
  }
}

void matvec_quant(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K) {
  static_assert(kDecodeMaxRows <= kMaxDotRows);
  const std::int64_t nb = K / kQuantBlock;
  const std::int64_t ng = nb / 4;
  std::vector<BlockQ8Act> act(static_cast<std::size_t>(M * nb));
  std::vector<ActGroup4> groups(static_cast<std::size_t>(wt == DType::Q4_0 ? M * ng : 0));
  for (std::int64_t m = 0; m < M; ++m) {
    c.k.quantize_act(x + m * K, act.data() + m * nb, nb);
    if (!groups.empty()) group_act_q4(act.data() + m * nb, groups.data() + m * ng, nb);
  }
  const auto* wb = static_cast<const std::byte*>(w);
  const std::size_t rb = row_bytes(wt, K);
  const auto& k = c.k;
  c.pool.parallel_for(
      N,
      [&](std::int64_t n0, std::int64_t n1) {
        float out[kMaxDotRows];
        for (std::int64_t n = n0; n < n1; ++n) {
          const std::byte* row = wb + static_cast<std::size_t>(n) * rb;
          // All M activation rows against this weight row in one pass over it.
          if (wt == DType::Q8_0)
            k.dot_q8_0_rows(reinterpret_cast<const BlockQ8_0*>(row), act.data(), nb,
                            static_cast<int>(M), out);
          else
            k.dot_q4_0_rows(reinterpret_cast<const BlockQ4_0*>(row), act.data(), groups.data(), nb,
                            static_cast<int>(M), out);
          for (std::int64_t m = 0; m < M; ++m) y[m * N + n] = out[m];
        }
      },
      matvec_grain(M, K));
}

void matvec_float(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K) {
  const auto* wb = static_cast<const std::byte*>(w);
  const std::size_t rb = row_bytes(wt, K);
  const auto& k = c.k;
  c.pool.parallel_for(
      N,
      [&](std::int64_t n0, std::int64_t n1) {
        for (std::int64_t n = n0; n < n1; ++n) {
          const std::byte* row = wb + static_cast<std::size_t>(n) * rb;
          for (std::int64_t m = 0; m < M; ++m) {
            const float* xm = x + m * K;
            float r;
            if (wt == DType::F32)
              r = k.dot_f32(reinterpret_cast<const float*>(row), xm, K);
            else if (wt == DType::F16)
              r = k.dot_f16(reinterpret_cast<const std::uint16_t*>(row), xm, K);
            else
              r = k.dot_bf16(reinterpret_cast<const std::uint16_t*>(row), xm, K);
            y[m * N + n] = r;
          }
        }
      },
      matvec_grain(M, K));
}

// Small prefill products (some dimension < 32): row-by-row f32 dots on widened weights.
void matmul_small(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K) {
  const auto* wb = static_cast<const std::byte*>(w);
  const std::size_t rb = row_bytes(wt, K);
  c.pool.parallel_for(N, [&](std::int64_t n0, std::int64_t n1) {
    std::vector<float> row(static_cast<std::size_t>(K));
    for (std::int64_t n = n0; n < n1; ++n) {
      const float* r = reinterpret_cast<const float*>(wb + static_cast<std::size_t>(n) * rb);
      if (wt != DType::F32) {
        widen_row(c.k, wt, wb + static_cast<std::size_t>(n) * rb, row.data(), K);
        r = row.data();
      }
      for (std::int64_t m = 0; m < M; ++m) y[m * N + n] = c.k.dot_f32(r, x + m * K, K);
    }
  });
}

void matmul_sgemm(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K) {
  if (wt == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), 1.0f, x, static_cast<int>(K), static_cast<const float*>(w),
                static_cast<int>(K), 0.0f, y, static_cast<int>(N));
    return;
  }
  thread_local std::vector<float> scratch;
  const std::int64_t tile_rows = prefill_tile_rows(K);
  scratch.resize(static_cast<std::size_t>(std::min(tile_rows, N) * K));
  const auto* wb = static_cast<const std::byte*>(w);
  const std::size_t rb = row_bytes(wt, K);
  for (std::int64_t n0 = 0; n0 < N; n0 += tile_rows) {
    const std::int64_t rows = std::min(tile_rows, N - n0);
    float* tile = scratch.data();
    c.pool.parallel_for(
        rows,
        [&](std::int64_t r0, std::int64_t r1) {
          for (std::int64_t r = r0; r < r1; ++r)
            widen_row(c.k, wt, wb + static_cast<std::size_t>(n0 + r) * rb, tile + r * K, K);
        },
        8);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M),
                static_cast<int>(rows), static_cast<int>(K), 1.0f, x, static_cast<int>(K), tile,
                static_cast<int>(K), 0.0f, y + n0, static_cast<int>(N));
  }
}

}  // namespace

void matmul(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
            std::int64_t N, std::int64_t K) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(y, y + M * N, 0.0f);
    return;
  }
  if (M <= kDecodeMaxRows) {
    if (is_quantized(wt))
      matvec_quant(c, x, wt, w, y, M, N, K);
    else
      matvec_float(c, x, wt, w, y, M, N, K);
    return;
  }
  if (M >= kSgemmMinDim && N >= kSgemmMinDim && K >= kSgemmMinDim)
    matmul_sgemm(c, x, wt, w, y, M, N, K);
  else
    matmul_small(c, x, wt, w, y, M, N, K);
}

}  // namespace kwaai::engine::cpu
