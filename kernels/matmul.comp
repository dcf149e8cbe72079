#version 450
// y[M, N] = x[M, K] . w[N, K]^T with f32 activations and f32/f16/bf16/q8_0/q4_0 weights.
//
// Two paths, picked by define:
//  MATVEC (decode, M <= 8): a workgroup owns NR output rows; its threads stride over the K
//    blocks of those rows, decode each weight block once and apply it to all M activation
//    rows, then reduce across the workgroup (subgroupAdd when SUBGROUP is defined, a shared
//    memory tree otherwise). Decode is bandwidth bound, so each weight byte is read once.
//  tiled (prefill): 64x64 output tiles, K in steps of 32 through shared memory; each of the
//    256 threads keeps a 4x4 register block.
//
// Weights larger than one storage-buffer binding (maxStorageBufferRange) are processed by
// several dispatches over row chunks: the host binds rows [n0, n0 + nc) and passes n0 so the
// output column lands in the right place.
#extension GL_GOOGLE_include_directive : require
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(push_constant) uniform Params {
  uint M;       // activation rows
  uint N;       // full output width (row stride of y)
  uint K;       // reduction length
  uint n0;      // first weight row of this chunk (output column offset)
  uint nc;      // weight rows in this chunk
  uint x_base;  // x view start, in floats
  uint w_base;  // w view start in dtype units (see weights.glsl)
  uint y_base;  // y view start, in floats
} p;

layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer WBufB { uint WBUF[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float Y[]; };

#include "ops_common.glsl"
#include "weights.glsl"

#ifdef MATVEC

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NR = 2;  // output rows per workgroup
const uint MAXM = 8u;

#ifdef SUBGROUP
shared float red[NR * MAXM][32];  // one partial per subgroup (>= 4 lanes per subgroup)
#else
shared float red[NR * MAXM][gl_WorkGroupSize.x];
#endif

void main() {
  const uint WG = gl_WorkGroupSize.x;
  uint tid = gl_LocalInvocationID.x;
  uint row0 = flat_group() * NR;
  uint nblk = (p.K + 31u) / 32u;

  float acc[NR][MAXM];
  for (uint r = 0u; r < NR; ++r)
    for (uint m = 0u; m < MAXM; ++m) acc[r][m] = 0.0;

  for (uint r = 0u; r < NR; ++r) {
    uint row = row0 + r;
    if (row >= p.nc) break;
    for (uint blk = tid; blk < nblk; blk += WG) {
      float wv[32];
      w_block32(p.w_base, p.K, row, blk, wv);
      uint k0 = blk * 32u;
      uint kn = min(32u, p.K - k0);
      for (uint m = 0u; m < MAXM; ++m) {
        if (m >= p.M) break;
        uint xo = p.x_base + m * p.K + k0;
        float s = 0.0;
        if (kn == 32u) {
          for (uint i = 0u; i < 32u; ++i) s += wv[i] * X[xo + i];
        } else {
          for (uint i = 0u; i < kn; ++i) s += wv[i] * X[xo + i];
        }
        acc[r][m] += s;
      }
    }
  }

#ifdef SUBGROUP
  for (uint r = 0u; r < NR; ++r)
    for (uint m = 0u; m < MAXM; ++m) {
      float s = subgroupAdd(acc[r][m]);
      if (subgroupElect()) red[r * MAXM + m][gl_SubgroupID] = s;
    }
  barrier();
  if (tid < NR * MAXM) {
    uint r = tid / MAXM, m = tid % MAXM;
    float s = 0.0;
    for (uint g = 0u; g < gl_NumSubgroups; ++g) s += red[tid][g];
    uint row = row0 + r;
    if (row < p.nc && m < p.M) Y[p.y_base + m * p.N + p.n0 + row] = s;
  }
#else
  for (uint v = 0u; v < NR * MAXM; ++v) red[v][tid] = acc[v / MAXM][v % MAXM];
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1) {
    if (tid < s)
      for (uint v = 0u; v < NR * MAXM; ++v) red[v][tid] += red[v][tid + s];
    barrier();
  }
  if (tid < NR * MAXM) {
    uint r = tid / MAXM, m = tid % MAXM;
    uint row = row0 + r;
    if (row < p.nc && m < p.M) Y[p.y_base + m * p.N + p.n0 + row] = red[tid][0];
  }
#endif
}

#else  // tiled

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
      if (n < p.nc) Y[p.y_base + m * p.N + p.n0 + n] = acc[i][j];
    }
  }
}

#endif
