#version 450
// y[M, N] (+)= x[M, K] . w[N, K]^T with f32 activations and f32/f16/bf16/q8_0/q4_0 weights,
// the prefill (M > 8) path: 64x64 output tiles, K in steps of 32 through shared memory; each
// of the 256 threads keeps a 4x4 register block. Decode (M <= 8) is matvec.comp.
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

// 64x64 output tiles, K in steps of 32 through shared memory; each of the 256 threads keeps a
// 4x4 register block (rows ty + 16i, columns tx + 16j), so every shared-memory value it loads
// feeds four multiply-adds.
const uint TM = 64u;  // tile rows (activations) and columns (weight rows)
const uint TK = 32u;  // K step
const uint WGT = 256u;
layout(local_size_x = 256) in;

shared float xs[TM][TK + 1u];
shared float ws[TM][TK + 1u];

void main() {
  uint tid = gl_LocalInvocationID.x;
  uint nt0 = gl_WorkGroupID.x * TM;  // chunk-relative weight row of the tile
  uint mt0 = gl_WorkGroupID.y * TM;
  uint tx = tid % 16u, ty = tid / 16u;

  float acc[4][4];
  for (uint i = 0u; i < 4u; ++i)
    for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;

  for (uint k0 = 0u; k0 < p.K; k0 += TK) {
    // Thread (rr, q) fills 8 columns of row rr of both tiles: piece k0/8 + q of weight row
    // nt0 + rr, dequantized whole (one scale read per piece, not per value), and the 8
    // activations under it. K steps start at multiples of 32, so a quantized step is exactly
    // one block and piece q is its q-th quarter (for q4_0, columns 4q.. and 16 + 4q..).
    {
      uint rr = tid >> 2, q = tid & 3u;
      uint m = mt0 + rr, n = nt0 + rr;
      float wv[8];
      float d = 0.0;
      if (n < p.nc) {
        w_piece(p.w_base, p.K, n, (k0 >> 3) + q, wv, d);
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
      float a[4], b[4];
      for (uint i = 0u; i < 4u; ++i) a[i] = xs[ty + 16u * i][kk];
      for (uint j = 0u; j < 4u; ++j) b[j] = ws[tx + 16u * j][kk];
      for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) acc[i][j] += a[i] * b[j];
    }
    barrier();
  }

  for (uint i = 0u; i < 4u; ++i) {
    uint m = mt0 + ty + 16u * i;
    if (m >= p.M) continue;
    for (uint j = 0u; j < 4u; ++j) {
      uint n = nt0 + tx + 16u * j;
      if (n >= p.nc) continue;
      uint yi = p.y_base + m * p.N + p.n0 + n;
      Y[yi] = p.accumulate != 0u ? Y[yi] + acc[i][j] : acc[i][j];
    }
  }
}
