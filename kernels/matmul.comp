#version 450
// y[M, N] (+)= x[M, K] . w[N, K]^T with f32 activations and f32/f16/bf16/q8_0/q4_0 weights,
// the prefill (M > 8) path: TM x TM output tiles, K in steps of 32 through shared memory; each
// thread keeps an RB x RB register block. TM and RB are specialization constants (the host's
// per-device-class table, engine/vulkan matmul_tile()); the workgroup has (TM / RB)^2 threads.
// Decode (M <= 8) is matvec.comp.
// `accumulate` adds the product to y (matmul_add: the residual add folded in).
//
// Weights larger than one storage-buffer binding (maxStorageBufferRange) are processed by
// several dispatches over row chunks: the host binds rows [n0, n0 + nc) and passes n0 so the
// output column lands in the right place.
#extension GL_GOOGLE_include_directive : require

layout(push_constant) uniform Params {
  uint M;       // activation rows
  uint N;       // full output width (row stride of y)
  uint K;       // reduction length
  uint n0;      // first weight row of this chunk (output column offset)
  uint nc;      // weight rows in this chunk
  uint x_base;  // x view start, in floats
  uint w_base;  // w view start in dtype units (see weights.glsl)
  uint y_base;  // y view start, in floats
  uint accumulate;
} p;

layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer WBufB { uint WBUF[]; };
layout(std430, binding = 2) buffer YBuf { float Y[]; };

#include "ops_common.glsl"
#include "weights.glsl"
#define PIECE_FN w_piece
#define PIECE_BUF WBUF
#include "weight_piece.glsl"

// Each thread keeps an RB x RB register block (rows ty + TS i, columns tx + TS j with
// TS = TM / RB threads a side), so every shared-memory value it loads feeds RB multiply-adds.
layout(constant_id = 0) const uint TM = 64u;  // tile rows (activations) and columns (weight rows)
layout(constant_id = 1) const uint RB = 4u;   // register block side
layout(local_size_x_id = 2, local_size_x = 256) in;  // (TM / RB)^2 threads
const uint TK = 32u;                          // K step
const uint TS = TM / RB;
const uint WGT = TS * TS;

shared float xs[TM][TK + 1u];
shared float ws[TM][TK + 1u];

void main() {
  uint tid = gl_LocalInvocationID.x;
  uint nt0 = gl_WorkGroupID.x * TM;  // chunk-relative weight row of the tile
  uint mt0 = gl_WorkGroupID.y * TM;
  uint tx = tid % TS, ty = tid / TS;

  float acc[RB][RB];
  for (uint i = 0u; i < RB; ++i)
    for (uint j = 0u; j < RB; ++j) acc[i][j] = 0.0;

  for (uint k0 = 0u; k0 < p.K; k0 += TK) {
    // Piece (rr, q) is 8 columns of row rr of both tiles: piece k0/8 + q of weight row
    // nt0 + rr, dequantized whole (one scale read per piece, not per value), and the 8
    // activations under it. K steps start at multiples of 32, so a quantized step is exactly
    // one block and piece q is its q-th quarter (for q4_0, columns 4q.. and 16 + 4q..). The
    // threads take the TM * 4 pieces in turn.
    for (uint l = tid; l < TM * 4u; l += WGT) {
      uint rr = l >> 2, q = l & 3u;
      uint m = mt0 + rr, n = nt0 + rr;
      float wv[8];
      float d = 0.0;
      if (n < p.nc) {
#if WT_KQUANT
        // K-quant pieces span 64 or 128 columns (weight_piece.glsl); the tile takes its 8
        // contiguous columns, one sub-block's, from w_run8.
        d = 1.0;
        w_run8(p.w_base, p.K, n, k0 + 8u * q, wv);
#else
        w_piece(p.w_base, p.K, n, (k0 >> 3) + q, wv, d);
#endif
      } else {
        for (uint j = 0u; j < 8u; ++j) wv[j] = 0.0;
      }
      for (uint j = 0u; j < 8u; ++j) {
#if WTYPE == WT_Q4_0
        uint c = j < 4u ? 4u * q + j : 16u + 4u * q + (j - 4u);
#else
        uint c = 8u * q + j;
#endif
        ws[rr][c] = wv[j] * d;
        uint k = k0 + 8u * q + j;
        xs[rr][8u * q + j] = (m < p.M && k < p.K) ? X[p.x_base + m * p.K + k] : 0.0;
      }
    }
    barrier();
    for (uint kk = 0u; kk < TK; ++kk) {
      float a[RB], b[RB];
      for (uint i = 0u; i < RB; ++i) a[i] = xs[ty + TS * i][kk];
      for (uint j = 0u; j < RB; ++j) b[j] = ws[tx + TS * j][kk];
      for (uint i = 0u; i < RB; ++i)
        for (uint j = 0u; j < RB; ++j) acc[i][j] += a[i] * b[j];
    }
    barrier();
  }

  for (uint i = 0u; i < RB; ++i) {
    uint m = mt0 + ty + TS * i;
    if (m >= p.M) continue;
    for (uint j = 0u; j < RB; ++j) {
      uint n = nt0 + tx + TS * j;
      if (n >= p.nc) continue;
      uint yi = p.y_base + m * p.N + p.n0 + n;
      Y[yi] = p.accumulate != 0u ? Y[yi] + acc[i][j] : acc[i][j];
    }
  }
}
