// The CPU backend's op implementations over raw host pointers. cpu_backend.cpp checks the
// arguments (engine/core/op_checks.hpp), resolves tensors to pointers and calls these.
#pragma once

#include <cstdint>
#include <span>

#include "engine/core/backend.hpp"
#include "engine/cpu/kernels.hpp"
#include "engine/cpu/thread_pool.hpp"

namespace kwaai::engine::cpu {

struct Ctx {
  ThreadPool& pool;
  const KernelTable& k;
};

// The least work (multiply-adds or weights) worth handing to a pool thread: below it the
// hand-off costs more than the work, and stalls outright when another process holds the
// other core.
inline constexpr std::int64_t kMinChunkWork = std::int64_t{1} << 16;

// y[M,N] (+)= x[M,K] · w[N,K]^T. Packed (block-quantized) weights: one integer kernel for
// every M. Float weights: row dots for M <= 8, sgemm otherwise.
inline constexpr std::int64_t kDecodeMaxRows = 8;
void matmul(const Ctx& c, const float* x, DType wt, const void* w, float* y, std::int64_t M,
            std::int64_t N, std::int64_t K, bool accumulate = false);

// One product of a shared x: y[M, N] (+)= x · w[N, K]^T (w in the backend's storage layout).
struct MatmulPart {
  DType wt;
  const void* w;
  float* y;
  std::int64_t N;
};
// Every part in one pass: x is quantized once and all parts' weight groups share one parallel
// region (the Q/K/V projections of a decode step are one fork/join, not three).
void matmul_many(const Ctx& c, const float* x, std::int64_t M, std::int64_t K,
                 std::span<const MatmulPart> parts, bool accumulate);
// out[M, N] = silu(x · gate^T) * (x · up^T); the parts' y are unused. With packed weights each
// 16-column group of both products is computed and combined in registers' reach, so the
// [M, N] gate and up activations are never written.
void matmul_silu_mul(const Ctx& c, const float* x, std::int64_t M, std::int64_t K,
                     const MatmulPart& gate, const MatmulPart& up, float* out);

void rms_norm(const Ctx& c, const float* x, const float* w, float* y, std::int64_t rows,
              std::int64_t cols, float eps);
void layer_norm(const Ctx& c, const float* x, const float* w, const float* b, float* y,
                std::int64_t rows, std::int64_t cols, float eps);
void rope(const Ctx& c, float* x, const std::int32_t* pos, std::int64_t T, std::int64_t H,
          std::int64_t D, const RopeConfig& cfg);
// Inverse frequencies (D/2 values) including Llama-3 scaling; exposed for tests/bench.
void rope_inv_freq(const RopeConfig& cfg, std::int64_t D, double* out);
void attention(const Ctx& c, const float* q, const float* k, const float* v, float* out,
               std::int64_t B, std::int64_t T, std::int64_t Hq, std::int64_t Hkv, std::int64_t D,
               std::int64_t L, std::int64_t n_past, float scale, std::int64_t window,
               const AlibiSlopes& alibi);
void silu_mul(const Ctx& c, const float* g, const float* u, float* out, std::int64_t n);
void gelu(const Ctx& c, const float* x, float* out, std::int64_t n, Gelu kind);
void bias_add(const Ctx& c, float* y, const float* bias, std::int64_t rows, std::int64_t cols);
void add(const Ctx& c, const float* a, const float* b, float* out, std::int64_t n);
void softmax(const Ctx& c, const float* x, float* out, std::int64_t rows, std::int64_t cols);
void argmax(const Ctx& c, const float* x, std::int32_t* out, std::int64_t rows, std::int64_t cols);
void blockwise8_quantize(const Ctx& c, const float* x, const float* code, float* absmax,
                         std::uint8_t* codes, std::int64_t n);
void blockwise8_dequantize(const Ctx& c, const std::uint8_t* codes, const float* absmax,
                           const float* code, float* out, std::int64_t n);
void topk(const Ctx& c, const float* x, std::int64_t rows, std::int64_t cols, std::int64_t k,
          std::int32_t* indices, float* values);
// engine/cpu/ops_moe.cpp (Backend::moe_route, gather_rows, scatter_add_rows; indices checked
// by the caller).
void moe_route(const Ctx& c, const float* logits, std::int64_t rows, std::int64_t experts,
               std::int64_t k, std::int32_t* ids, float* weights);
void gather_rows(const float* src, const std::int32_t* idx, float* out, std::int64_t n,
                 std::int64_t cols);
void scatter_add_rows(const float* src, const std::int32_t* idx, const float* scale, float* y,
                      std::int64_t n, std::int64_t cols);

}  // namespace kwaai::engine::cpu
