// matmul for the CPU backend.
//
// Block-quantized weights (Q8_0, Q4_0) are stored packed (engine/cpu/qpack.hpp) and go
// through one integer kernel for every M: x is quantized once per call into tiles of the
// table's gemm_rows rows (8-bit codes per 32 values, as llama.cpp's q8 activations), and the
// pool splits the weight's 16-row groups into contiguous ranges, each thread running every
// activation tile against its groups. A group (K = 4096: 70 KB of Q8_0) stays in L1/L2 while
// the tiles stream past it, so the weights are read from memory once per call whatever M is;
// decode (M <= 8, one tile) is then a pure stream of the weights. OpenBLAS is not involved, so
// prefill speed does not depend on OpenBLAS recognising the CPU. Several products of one x
// (Q/K/V, gate/up) share the quantization and one parallel region (matmul_many,
// matmul_silu_mul), and a residual add can be folded into the product (accumulate).
//
// Float weights: decode (M <= 8) is a row-dot per output on the stored format; prefill is
// OpenBLAS sgemm, f16/bf16 widened to f32 a tile of rows at a time.
#include <cblas.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/core/formats.hpp"
#include "engine/cpu/cpu_ops.hpp"
#include "engine/cpu/qpack.hpp"

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

inline void store(float* y, float v, bool accumulate) {
  *y = accumulate ? *y + v : v;
}

// ---- packed quantized weights ----

GemmFn gemm_for(const KernelTable& k, DType t) {
  switch (t) {
    case DType::Q8_0:
      return k.gemm_q8_0;
    case DType::Q4_0:
      return k.gemm_q4_0;
    default:
      throw std::invalid_argument("matmul: no packed kernel for " +
                                  std::string(format_info(t).name));
  }
}

std::int32_t act_offset(const KernelTable& k, DType t) {
  return t == DType::Q8_0 ? k.q8_0_act_offset : k.q4_0_act_offset;
}

// x quantized into the calling thread's ActPack (workers only read it).
const ActPack& quantize_x(const Ctx& c, const float* x, std::int64_t M, std::int64_t K,
                          std::int32_t offset) {
  // The caller's pack, named by reference: a lambda that named the thread_local itself would
  // reach each worker's own instance.
  thread_local ActPack pack;
  ActPack& act = pack;
  act.reset(M, K, c.k.gemm_rows);
  const std::int64_t grain =
      std::max<std::int64_t>(1, kMinChunkWork / std::max<std::int64_t>(1, c.k.gemm_rows * K));
  c.pool.parallel_for(
      act.tiles(),
      [&](std::int64_t t0, std::int64_t t1) {
        act.quantize_tiles(x, c.k.quantize_act, offset, t0, t1);
      },
      grain);
  return act;
}

// Groups per chunk: at least kMinChunkWork multiply-adds.
std::int64_t group_grain(std::int64_t M, std::int64_t K) {
  return std::max<std::int64_t>(1, kMinChunkWork / std::max<std::int64_t>(1, kPackRows * K * M));
}

// K is walked in pieces of 32 blocks (1024 values): a piece of a group (16 KiB of Q8_0 codes)
// and of an activation tile (12 KiB at 12 rows) stay in L1 while every tile of the call runs
// against the piece. Before this, a 4096-wide group (64 KiB of Q8_0) and a tile did not fit
// together and the kernel ran from L2 at 54% of the int8 peak. The kernels continue their
// accumulation chain across pieces, so the result has the same bits as one pass over K.
constexpr std::int64_t kKPieceBlocks = 32;

ActTile at_block(const ActTile& a, std::int64_t b0) {
  ActTile t = a;
  t.qs += b0 * a.mr * kQuantBlock;
  t.d += b0 * a.mr;
  t.bias += b0 * a.mr;
  return t;
}

// One 16-row group's codes and scales from block b0 on.
struct GroupPiece {
  const std::uint8_t* codes;
  const std::uint16_t* scales;
};
GroupPiece piece(const PackGeometry& g, const std::uint8_t* w, std::int64_t gi, std::int64_t b0) {
  const std::uint8_t* grp = w + static_cast<std::size_t>(gi) * g.group_bytes;
  return {grp + static_cast<std::size_t>(b0) * kPackRows * g.code_bytes,
          reinterpret_cast<const std::uint16_t*>(grp + g.scales_offset()) + b0 * kPackRows};
}

int valid_rows(const PackGeometry& g, std::int64_t gi) {
  return static_cast<int>(std::min<std::int64_t>(kPackRows, g.rows - gi * kPackRows));
}

// All tiles of `act` against groups [g0, g1) of one packed weight. With one tile (decode) each
// group is walked start to end, so a thread streams its part of the weight in address order.
// With several (prefill) the K piece is the outer loop: one piece of every tile (M x 1024
// codes, 512 KiB at M = 512) then stays in L2 while the thread's groups pass by, instead of
// all of x being streamed from L3 once per group (which held two threads at 50-57% of the int8
// peak against one thread's 69%).
void run_groups(const ActPack& act, GemmFn fn, const PackGeometry& g, const std::uint8_t* w,
                float* y, std::int64_t ldy, std::int64_t g0, std::int64_t g1, bool accumulate) {
  auto one = [&](std::int64_t gi, std::int64_t b0) {
    const int n_valid = valid_rows(g, gi);
    const std::int64_t nbk = std::min(kKPieceBlocks, g.nb - b0);
    const GroupPiece p = piece(g, w, gi, b0);
    for (std::int64_t t = 0; t < act.tiles(); ++t)
      fn(p.codes, p.scales, nbk, at_block(act.tile(t), b0),
         y + t * act.tile_rows() * ldy + gi * kPackRows, ldy, n_valid, accumulate || b0 > 0);
  };
  if (act.tiles() == 1) {
    for (std::int64_t gi = g0; gi < g1; ++gi)
      for (std::int64_t b0 = 0; b0 < g.nb; b0 += kKPieceBlocks) one(gi, b0);
  } else {
    for (std::int64_t b0 = 0; b0 < g.nb; b0 += kKPieceBlocks)
      for (std::int64_t gi = g0; gi < g1; ++gi) one(gi, b0);
  }
}

bool all_packed_alike(const KernelTable& k, std::span<const MatmulPart> parts) {
  for (const auto& p : parts)
    if (!format_info(p.wt).cpu_packed || act_offset(k, p.wt) != act_offset(k, parts[0].wt))
      return false;
  return true;
}

void matmul_packed(const Ctx& c, const float* x, std::int64_t M, std::int64_t K,
                   std::span<const MatmulPart> parts, bool accumulate) {
  const ActPack& act = quantize_x(c, x, M, K, act_offset(c.k, parts[0].wt));
  std::vector<PackGeometry> geo;
  std::vector<std::int64_t> first;  // first global group index of each part
  std::int64_t total = 0;
  for (const auto& p : parts) {
    geo.push_back(pack_geometry(p.wt, p.N, K));
    first.push_back(total);
    total += geo.back().groups;
  }
  c.pool.parallel_for(
      total,
      [&](std::int64_t i0, std::int64_t i1) {
        for (std::size_t p = 0; p < parts.size(); ++p) {
          const std::int64_t lo = std::max(i0, first[p]);
          const std::int64_t hi = std::min(i1, first[p] + geo[p].groups);
          if (lo >= hi) continue;
          run_groups(act, gemm_for(c.k, parts[p].wt), geo[p],
                     static_cast<const std::uint8_t*>(parts[p].w), parts[p].y, parts[p].N,
                     lo - first[p], hi - first[p], accumulate);
        }
      },
      group_grain(M, K));
}

// ---- float weights ----

void matvec_float(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K, bool accumulate) {
  const auto* wb = static_cast<const std::byte*>(w);
  const std::size_t rb = dtype_bytes(wt, K);
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
            store(y + m * N + n, r, accumulate);
          }
        }
      },
      matvec_grain(M, K));
}

// Small prefill products (some dimension < 32): row-by-row f32 dots on widened weights.
void matmul_small(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K, bool accumulate) {
  const auto* wb = static_cast<const std::byte*>(w);
  const std::size_t rb = dtype_bytes(wt, K);
  c.pool.parallel_for(N, [&](std::int64_t n0, std::int64_t n1) {
    std::vector<float> row(static_cast<std::size_t>(K));
    for (std::int64_t n = n0; n < n1; ++n) {
      const float* r = reinterpret_cast<const float*>(wb + static_cast<std::size_t>(n) * rb);
      if (wt != DType::F32) {
        widen_row(c.k, wt, wb + static_cast<std::size_t>(n) * rb, row.data(), K);
        r = row.data();
      }
      for (std::int64_t m = 0; m < M; ++m)
        store(y + m * N + n, c.k.dot_f32(r, x + m * K, K), accumulate);
    }
  });
}

void matmul_sgemm(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K, bool accumulate) {
  const float beta = accumulate ? 1.0f : 0.0f;
  if (wt == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), 1.0f, x, static_cast<int>(K), static_cast<const float*>(w),
                static_cast<int>(K), beta, y, static_cast<int>(N));
    return;
  }
  thread_local std::vector<float> scratch;
  const std::int64_t tile_rows = prefill_tile_rows(K);
  scratch.resize(static_cast<std::size_t>(std::min(tile_rows, N) * K));
  const auto* wb = static_cast<const std::byte*>(w);
  const std::size_t rb = dtype_bytes(wt, K);
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
                static_cast<int>(K), beta, y + n0, static_cast<int>(N));
  }
}

void matmul_float(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
                  std::int64_t N, std::int64_t K, bool accumulate) {
  if (M <= kDecodeMaxRows)
    matvec_float(c, x, wt, w, y, M, N, K, accumulate);
  else if (M >= kSgemmMinDim && N >= kSgemmMinDim && K >= kSgemmMinDim)
    matmul_sgemm(c, x, wt, w, y, M, N, K, accumulate);
  else
    matmul_small(c, x, wt, w, y, M, N, K, accumulate);
}

}  // namespace

void matmul_many(const Ctx& c, const float* x, std::int64_t M, std::int64_t K,
                 std::span<const MatmulPart> parts, bool accumulate) {
  if (M == 0 || parts.empty()) return;
  if (K == 0) {
    for (const auto& p : parts)
      if (!accumulate) std::fill(p.y, p.y + M * p.N, 0.0f);
    return;
  }
  if (all_packed_alike(c.k, parts)) {
    matmul_packed(c, x, M, K, parts, accumulate);
    return;
  }
  for (const auto& p : parts) {
    if (format_info(p.wt).cpu_packed)
      matmul_packed(c, x, M, K, std::span(&p, 1), accumulate);
    else
      matmul_float(c, x, p.wt, p.w, p.y, M, p.N, K, accumulate);
  }
}

void matmul(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
            std::int64_t N, std::int64_t K, bool accumulate) {
  if (N == 0) return;
  const MatmulPart p{wt, w, y, N};
  matmul_many(c, x, M, K, std::span(&p, 1), accumulate);
}

void matmul_silu_mul(const Ctx& c, const float* x, std::int64_t M, std::int64_t K,
                     const MatmulPart& gate, const MatmulPart& up, float* out) {
  const std::int64_t N = gate.N;
  if (M == 0 || N == 0) return;
  const bool fused = K > 0 && gate.wt == up.wt && format_info(gate.wt).cpu_packed;
  if (!fused) {
    // Unfused: both products in full, then the element-wise op.
    std::vector<float> gy(static_cast<std::size_t>(M * N)), uy(gy.size());
    matmul(c, x, gate.wt, gate.w, gy.data(), M, N, K, false);
    matmul(c, x, up.wt, up.w, uy.data(), M, N, K, false);
    silu_mul(c, gy.data(), uy.data(), out, M * N);
    return;
  }
  const ActPack& act = quantize_x(c, x, M, K, act_offset(c.k, gate.wt));
  const PackGeometry g = pack_geometry(gate.wt, N, K);
  const GemmFn fn = gemm_for(c.k, gate.wt);
  const auto* wg = static_cast<const std::uint8_t*>(gate.w);
  const auto* wu = static_cast<const std::uint8_t*>(up.w);
  // Prefill: gate into `out` and up into a scratch in the same piece-outer order as matmul,
  // then silu(g) * u over each thread's own columns. Decode: per group, both products into
  // small buffers and straight out, so neither [M, N] product is written.
  const bool prefill = act.tiles() > 1;
  std::vector<float> up_y(prefill ? static_cast<std::size_t>(M * N) : 0);
  c.pool.parallel_for(
      g.groups,
      [&](std::int64_t g0, std::int64_t g1) {
        if (prefill) {
          run_groups(act, fn, g, wg, out, N, g0, g1, false);
          run_groups(act, fn, g, wu, up_y.data(), N, g0, g1, false);
          const std::int64_t c0 = g0 * kPackRows, c1 = std::min(N, g1 * kPackRows);
          for (std::int64_t m = 0; m < M; ++m)
            c.k.silu_mul_f32(out + m * N + c0, up_y.data() + m * N + c0, out + m * N + c0, c1 - c0);
          return;
        }
        float tg[kMaxGemmRows * kPackRows], tu[kMaxGemmRows * kPackRows];
        for (std::int64_t gi = g0; gi < g1; ++gi) {
          const int n_valid = valid_rows(g, gi);
          for (std::int64_t b0 = 0; b0 < g.nb; b0 += kKPieceBlocks) {
            const std::int64_t nbk = std::min(kKPieceBlocks, g.nb - b0);
            const GroupPiece pg = piece(g, wg, gi, b0), pu = piece(g, wu, gi, b0);
            const ActTile a = at_block(act.tile(0), b0);
            fn(pg.codes, pg.scales, nbk, a, tg, kPackRows, n_valid, b0 > 0);
            fn(pu.codes, pu.scales, nbk, a, tu, kPackRows, n_valid, b0 > 0);
          }
          for (std::int64_t m = 0; m < M; ++m)
            c.k.silu_mul_f32(tg + m * kPackRows, tu + m * kPackRows, out + m * N + gi * kPackRows,
                             n_valid);
        }
      },
      group_grain(2 * M, K));
}

}  // namespace kwaai::engine::cpu
