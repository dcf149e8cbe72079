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

// 64x64 output tiles, K in steps of 32 through shared memory; each of the 256 threads keeps a
// 4x4 register block (rows ty + 16i, columns tx + 16j), so every shared-memory value it loads
// feeds four multiply-adds.
const uint TM = 64u;  // tile rows (activations) and columns (weight rows)
const uint TK = 32u;  // K step
const uint WGT = 256u;
const uint LOADS = TM * TK / WGT;  // 8 values of x and 8 of w per thread per step
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
    for (uint l = 0u; l < LOADS; ++l) {
      uint idx = tid + l * WGT;
      uint rr = idx / TK, kk = idx % TK;
      uint m = mt0 + rr, k = k0 + kk, n = nt0 + rr;
      xs[rr][kk] = (m < p.M && k < p.K) ? X[p.x_base + m * p.K + k] : 0.0;
      ws[rr][kk] = (n < p.nc && k < p.K) ? w_at(p.w_base, p.K, n, k) : 0.0;
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
