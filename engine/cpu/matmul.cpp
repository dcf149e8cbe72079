// matmul for the CPU backend.
//
// Packed weights (every cpu_packed format of the format table: Q8_0, Q4_0, f16, bf16; see
// engine/cpu/qpack.hpp) go through one kernel per format for every M: x is prepared once per
// call into tiles of the table's gemm_rows rows (8-bit codes per 32 values for the block
// formats, as llama.cpp's q8 activations; transposed f32 for f16/bf16, gemm_half_rows rows), and
// the pool splits the weight's 16-row groups into contiguous ranges (whole kernel calls of
// gemm_groups groups), each thread running every tile against its groups, K in cache-sized pieces.
// The weights are read from memory once per call whatever M is; decode (M <= gemm_rows, one tile)
// is a pure stream of them. OpenBLAS is not involved, so prefill speed does not depend on OpenBLAS
// recognising the CPU. Several products of one x (Q/K/V, gate/up) share the preparation and one
// parallel region (matmul_many, matmul_silu_mul), and a residual add can be folded into the product
// (accumulate).
//
// f32 weights: row dots for decode, OpenBLAS sgemm for prefill (the f32 fallback).
#include <cblas.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/core/formats.hpp"
#include "engine/core/kquants.hpp"
#include "engine/cpu/cpu_ops.hpp"
#include "engine/cpu/qpack.hpp"

namespace kwaai::engine::cpu {

namespace {

constexpr std::int64_t kSgemmMinDim = 32;

// Decode mat-vec rows per chunk: at least 16, and at least kMinChunkWork weights, so a small
// matrix (a tiny model's, or a K/V projection of a few rows) runs on the calling thread.
std::int64_t matvec_grain(std::int64_t M, std::int64_t K) {
  return std::max<std::int64_t>(16, kMinChunkWork / std::max<std::int64_t>(1, M * K));
}

inline void store(float* y, float v, bool accumulate) {
  *y = accumulate ? *y + v : v;
}

// ---- packed weights ----

// The two kinds of packed weight: block-quantized formats meet 8-bit activation codes
// (ActPack), 16-bit floats meet f32 activations (FloatActPack).
bool int8_kind(DType t) {
  return format_info(t).block_elems > 1;
}

GemmFn gemm_for(const KernelTable& k, DType t) {
  switch (t) {
    case DType::Q8_0:
      return k.gemm_q8_0;
    case DType::Q4_0:
      return k.gemm_q4_0;
    case DType::Q4_K:
      return k.gemm_q4_k;
    case DType::Q5_K:
      return k.gemm_q5_k;
    case DType::Q6_K:
      return k.gemm_q6_k;
    default:
      throw std::invalid_argument("matmul: no packed kernel for " +
                                  std::string(format_info(t).name));
  }
}

GemmHalfFn gemm_half_for(const KernelTable& k, DType t) {
  if (t == DType::F16) return k.gemm_f16;
  if (t == DType::BF16) return k.gemm_bf16;
  throw std::invalid_argument("matmul: no packed kernel for " + std::string(format_info(t).name));
}

// The K-quant kernels read bias = -sum(codes) (their minimum or code-offset term; KernelTable).
std::int32_t act_offset(const KernelTable& k, DType t) {
  if (pack_kquant(pack_code_of(t))) return 1;
  return t == DType::Q8_0 ? k.q8_0_act_offset : k.q4_0_act_offset;
}

// Tile rows per activation pack: at least kMinChunkWork values per parallel chunk.
std::int64_t tile_grain(const Ctx& c, std::int64_t K) {
  return std::max<std::int64_t>(1, kMinChunkWork / std::max<std::int64_t>(1, c.k.gemm_rows * K));
}

// x prepared once per call, in the calling thread's packs (workers only read them; the packs
// are named by reference, since a lambda naming a thread_local reaches each worker's own).
struct PreparedX {
  const ActPack* q = nullptr;
  const FloatActPack* h = nullptr;
  std::int64_t tiles() const { return q ? q->tiles() : h->tiles(); }
  int tile_rows() const { return q ? q->tile_rows() : h->tile_rows(); }
};

PreparedX prepare_x(const Ctx& c, const float* x, std::int64_t M, std::int64_t K, DType wt) {
  if (int8_kind(wt)) {
    thread_local ActPack pack;
    ActPack& act = pack;
    act.reset(M, K, c.k.gemm_rows);
    const std::int32_t offset = act_offset(c.k, wt);
    c.pool.parallel_for(
        act.tiles(),
        [&](std::int64_t t0, std::int64_t t1) {
          act.quantize_tiles(x, c.k.quantize_act, offset, t0, t1);
        },
        tile_grain(c, K));
    return {&act, nullptr};
  }
  thread_local FloatActPack pack;
  FloatActPack& act = pack;
  act.reset(M, K, c.k.gemm_half_rows);
  c.pool.parallel_for(
      act.tiles(), [&](std::int64_t t0, std::int64_t t1) { act.fill_tiles(x, t0, t1); },
      tile_grain(c, K));
  return {nullptr, &act};
}

// Groups per chunk: at least kMinChunkWork multiply-adds.
std::int64_t group_grain(std::int64_t M, std::int64_t K) {
  return std::max<std::int64_t>(1, kMinChunkWork / std::max<std::int64_t>(1, kPackRows * K * M));
}

// K is walked in pieces that keep a piece of a call's groups in cache while every tile of the
// call runs against it: 128 blocks (4096 values: 2 x 68 KiB of Q8_0 codes for the two groups of
// an AVX-512 call, in L2; 24 KiB of a 6-row tile) for the int8 kernels, 256 values (8 KiB of
// f16, 12 KiB of f32 tile) for the 16-bit float ones. The kernels continue their accumulation
// chain across pieces, so the result has the same bits as one pass over K. Measured with the
// 6 x 2 kernel (512 x 4096 x 4096, 2 threads, variants interleaved in one process): pieces of
// 128 blocks 0-3 points of the int8 peak ahead of 64 and 32, 32 about 3 ahead of 16 (fewer
// calls, fewer y loads and stores per product).
constexpr std::int64_t kKPieceBlocks = 128;
static_assert(kKPieceBlocks % (kSuperBlock / kQuantBlock) == 0,
              "K pieces must start at K-quant super-block boundaries");
constexpr std::int64_t kHalfPieceValues = 256;

// Kernel calls' worth of a weight's groups (units of gemm_groups): threads split units, so no
// range boundary leaves a two-group kernel with one group.
std::int64_t call_units(const PackGeometry& g, std::int64_t groups_per_call) {
  return (g.groups + groups_per_call - 1) / groups_per_call;
}

int valid_rows(const PackGeometry& g, std::int64_t gi) {
  return static_cast<int>(std::min<std::int64_t>(kPackRows, g.rows - gi * kPackRows));
}

// All tiles of x against groups [g0, g1) of one packed weight, up to the table's gemm_groups
// groups per kernel call. The int8 kernels and decode go group by group and K piece by piece,
// every tile against each piece: a thread streams its part of the weight in address order
// (decode reads nothing else) and a prefill piece is reused by all tiles from cache while x
// streams past from L2/L3. The 16-bit float kernels' prefill (12 rows x 1 group) takes the K
// piece as the outer loop: one piece of every tile (M x 256 values) then stays in L2 while the
// thread's groups pass by, instead of all of x being streamed from L3 once per group (which
// held the then 12 x 1 int8 kernel at 50-57% of the int8 peak on two threads against one
// thread's 69%). With the 6 x 2 int8 kernel x is streamed once per two groups, and group
// outer over all tiles was 8-14 points of the int8 peak ahead of K piece outer in 48-row
// batches and 0-4 ahead of group outer in 48-192-row batches (interleaved runs, 2 threads).
// y's column 0 is group `y_group0`'s first row (0 for a whole product).
void run_groups(const KernelTable& k, const PreparedX& x, DType wt, const PackGeometry& g,
                const std::uint8_t* w, float* y, std::int64_t ldy, std::int64_t g0, std::int64_t g1,
                bool accumulate, std::int64_t y_group0 = 0) {
  std::int64_t pieces = 0, step = 1;                    // groups per call
  std::function<void(std::int64_t, std::int64_t)> one;  // group, K piece
  if (x.q) {
    const GemmFn fn = gemm_for(k, wt);
    pieces = (g.nb + kKPieceBlocks - 1) / kKPieceBlocks;
    const int G = k.gemm_groups;
    // One call takes up to G consecutive groups (the range's last step may take fewer).
    one = [&, fn, G](std::int64_t gi, std::int64_t p) {
      const std::int64_t b0 = p * kKPieceBlocks, nbk = std::min(kKPieceBlocks, g.nb - b0);
      const int groups = static_cast<int>(std::min<std::int64_t>(G, g1 - gi));
      const std::uint8_t* grp = w + static_cast<std::size_t>(gi) * g.group_bytes;
      const std::uint8_t* codes = grp + static_cast<std::size_t>(b0) * kPackRows * g.code_bytes;
      const auto* scales = reinterpret_cast<const std::uint16_t*>(grp + g.scales_at(b0));
      const int n_valid =
          static_cast<int>(std::min<std::int64_t>(groups * kPackRows, g.rows - gi * kPackRows));
      for (std::int64_t t = 0; t < x.q->tiles(); ++t) {
        ActTile a = x.q->tile(t);
        a.qs += b0 * a.mr * kQuantBlock;
        a.d += b0 * a.mr;
        a.bias += b0 * a.mr;
        a.hsum += b0 * a.mr;
        a.dbias += b0 * a.mr;
        fn(codes, scales, g.group_bytes, groups, nbk, a,
           y + t * x.q->tile_rows() * ldy + (gi - y_group0) * kPackRows, ldy, n_valid,
           accumulate || b0 > 0);
      }
    };
    step = G;
  } else {
    const GemmHalfFn fn = gemm_half_for(k, wt);
    const std::int64_t kp = g.nb * kQuantBlock;  // K padded to the 32-value step blocks
    // Decode (one tile) takes K whole: nothing is reused, and the 1- and 2-row kernels split
    // their sums into chains that a piece boundary would cut (KernelTable::gemm_f16).
    const std::int64_t piece = x.tiles() == 1 ? kp : kHalfPieceValues;
    pieces = (kp + piece - 1) / piece;
    one = [&, fn, kp, piece](std::int64_t gi, std::int64_t p) {
      const std::int64_t k0 = p * piece, nk = std::min(piece, kp - k0);
      const auto* wv =
          reinterpret_cast<const std::uint16_t*>(w + static_cast<std::size_t>(gi) * g.group_bytes) +
          k0 * kPackRows;
      for (std::int64_t t = 0; t < x.h->tiles(); ++t) {
        FloatTile a = x.h->tile(t);
        a.xt += k0 * a.mr;
        fn(wv, nk, a, y + t * x.h->tile_rows() * ldy + (gi - y_group0) * kPackRows, ldy,
           valid_rows(g, gi), accumulate || k0 > 0);
      }
    };
  }
  if (x.q || x.tiles() == 1) {
    for (std::int64_t gi = g0; gi < g1; gi += step)
      for (std::int64_t p = 0; p < pieces; ++p) one(gi, p);
  } else {
    for (std::int64_t p = 0; p < pieces; ++p)
      for (std::int64_t gi = g0; gi < g1; gi += step) one(gi, p);
  }
}

// Parts that can share one prepared x: all packed, of one kind, and for the int8 kind with the
// same activation offset.
bool all_packed_alike(const KernelTable& k, std::span<const MatmulPart> parts) {
  const DType t0 = parts[0].wt;
  for (const auto& p : parts) {
    if (!format_info(p.wt).cpu_packed || int8_kind(p.wt) != int8_kind(t0)) return false;
    if (int8_kind(t0) && act_offset(k, p.wt) != act_offset(k, t0)) return false;
  }
  return true;
}

void matmul_packed(const Ctx& c, const float* x, std::int64_t M, std::int64_t K,
                   std::span<const MatmulPart> parts, bool accumulate) {
  const PreparedX px = prepare_x(c, x, M, K, parts[0].wt);
  const std::int64_t G = c.k.gemm_groups;
  std::vector<PackGeometry> geo;
  std::vector<std::int64_t> first, units;  // each part's first global unit and its unit count
  std::int64_t total = 0;
  for (const auto& p : parts) {
    geo.push_back(pack_geometry(p.wt, p.N, K));
    first.push_back(total);
    units.push_back(call_units(geo.back(), G));
    total += units.back();
  }
  c.pool.parallel_for(
      total,
      [&](std::int64_t i0, std::int64_t i1) {
        for (std::size_t p = 0; p < parts.size(); ++p) {
          const std::int64_t lo = std::max(i0, first[p]);
          const std::int64_t hi = std::min(i1, first[p] + units[p]);
          if (lo >= hi) continue;
          run_groups(c.k, px, parts[p].wt, geo[p], static_cast<const std::uint8_t*>(parts[p].w),
                     parts[p].y, parts[p].N, (lo - first[p]) * G,
                     std::min(geo[p].groups, (hi - first[p]) * G), accumulate);
        }
      },
      std::max<std::int64_t>(1, group_grain(M, K) / G));
}

// ---- f32 weights ----

void matvec_f32(const Ctx& c, const float* x, const float* w, float* y, std::int64_t M,
                std::int64_t N, std::int64_t K, bool accumulate) {
  c.pool.parallel_for(
      N,
      [&](std::int64_t n0, std::int64_t n1) {
        for (std::int64_t n = n0; n < n1; ++n)
          for (std::int64_t m = 0; m < M; ++m)
            store(y + m * N + n, c.k.dot_f32(w + n * K, x + m * K, K), accumulate);
      },
      matvec_grain(M, K));
}

// f32 weights (the one weight format the CPU keeps unpacked): row dots for decode and small
// products, OpenBLAS sgemm otherwise (the f32 fallback; every other format has its own kernels).
void matmul_f32(const Ctx& c, const float* x, DType wt, const void* wv, float* y, std::int64_t M,
                std::int64_t N, std::int64_t K, bool accumulate) {
  if (wt != DType::F32)
    throw std::invalid_argument("matmul: no CPU kernel for unpacked " +
                                std::string(format_info(wt).name) + " weights");
  const auto* w = static_cast<const float*>(wv);
  if (M <= kDecodeMaxRows || M < kSgemmMinDim || N < kSgemmMinDim || K < kSgemmMinDim) {
    matvec_f32(c, x, w, y, M, N, K, accumulate);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), 1.0f, x, static_cast<int>(K), w, static_cast<int>(K),
              accumulate ? 1.0f : 0.0f, y, static_cast<int>(N));
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
      matmul_f32(c, x, p.wt, p.w, p.y, M, p.N, K, accumulate);
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
  const PreparedX px = prepare_x(c, x, M, K, gate.wt);
  const PackGeometry g = pack_geometry(gate.wt, N, K);
  const auto* wg = static_cast<const std::uint8_t*>(gate.w);
  const auto* wu = static_cast<const std::uint8_t*>(up.w);
  // Prefill: gate into `out` and up into a scratch in matmul's piece-outer order, then
  // silu(g) * u over each thread's own columns. Decode (one tile): per group, both products
  // into 16-column buffers and straight out, so neither [M, N] product is written.
  const bool prefill = px.tiles() > 1;
  std::vector<float> up_y(prefill ? static_cast<std::size_t>(M * N) : 0);
  const std::int64_t G = c.k.gemm_groups;
  c.pool.parallel_for(
      call_units(g, G),
      [&](std::int64_t u0, std::int64_t u1) {
        const std::int64_t g0 = u0 * G, g1 = std::min(g.groups, u1 * G);
        if (prefill) {
          run_groups(c.k, px, gate.wt, g, wg, out, N, g0, g1, false);
          run_groups(c.k, px, up.wt, g, wu, up_y.data(), N, g0, g1, false);
          const std::int64_t c0 = g0 * kPackRows, c1 = std::min(N, g1 * kPackRows);
          for (std::int64_t m = 0; m < M; ++m)
            c.k.silu_mul_f32(out + m * N + c0, up_y.data() + m * N + c0, out + m * N + c0, c1 - c0);
          return;
        }
        // One call's groups at a time (ld = G * 16 columns).
        constexpr std::int64_t ld = kMaxGemmGroups * kPackRows;
        float tg[kMaxGemmRows * ld], tu[kMaxGemmRows * ld];
        for (std::int64_t gi = g0; gi < g1; gi += G) {
          const std::int64_t ge = std::min(g1, gi + G);
          run_groups(c.k, px, gate.wt, g, wg, tg, ld, gi, ge, false, gi);
          run_groups(c.k, px, up.wt, g, wu, tu, ld, gi, ge, false, gi);
          const std::int64_t n_valid = std::min(N, ge * kPackRows) - gi * kPackRows;
          for (std::int64_t m = 0; m < M; ++m)
            c.k.silu_mul_f32(tg + m * ld, tu + m * ld, out + m * N + gi * kPackRows, n_valid);
        }
      },
      std::max<std::int64_t>(1, group_grain(2 * M, K) / G));
}

}  // namespace kwaai::engine::cpu
