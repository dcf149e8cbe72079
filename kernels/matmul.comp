#version 450
// y[M, N] = x[M, K] . w[N, K]^T with f32 activations and f32/f16/bf16/q8_0/q4_0 weights.
//
// Two paths, picked by define:
//  MATVEC (decode, M <= 8): a workgroup owns NR output rows; its threads stride over the K
//    blocks of those rows, decode each weight block once and apply it to all M activation
//    rows, then reduce across the workgroup (subgroupAdd when SUBGROUP is defined, a shared
//    memory tree otherwise). Decode is bandwidth bound, so each weight byte is read once.
//  tiled (prefill): 32x32 output tiles, K in steps of 32 through shared memory; each of the
//    256 threads keeps a 4x1 register block.
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

const uint TS = 32u;   // output tile edge and K step
const uint WGT = 256u; // threads: each owns one column and TS*TS/WGT = 4 rows of the tile
const uint PER = TS * TS / WGT;
layout(local_size_x = 256) in;

shared float xs[TS][TS + 1u];
shared float ws[TS][TS + 1u];

void main() {
  uint tid = gl_LocalInvocationID.x;
  uint nt0 = gl_WorkGroupID.x * TS;  // chunk-relative weight row of the tile
  uint mt0 = gl_WorkGroupID.y * TS;
  uint col = tid % TS;
  uint rowb = tid / TS;  // rows rowb + j * (WGT / TS)

  float acc[PER];
  for (uint j = 0u; j < PER; ++j) acc[j] = 0.0;

  for (uint k0 = 0u; k0 < p.K; k0 += TS) {
    for (uint j = 0u; j < PER; ++j) {
      uint idx = tid + j * WGT;
      uint rr = idx / TS, kk = idx % TS;
      uint m = mt0 + rr, k = k0 + kk, n = nt0 + rr;
      xs[rr][kk] = (m < p.M && k < p.K) ? X[p.x_base + m * p.K + k] : 0.0;
      ws[rr][kk] = (n < p.nc && k < p.K) ? w_at(p.w_base, p.K, n, k) : 0.0;
    }
    barrier();
    for (uint kk = 0u; kk < TS; ++kk) {
      float wv = ws[col][kk];
      for (uint j = 0u; j < PER; ++j) acc[j] += xs[rowb + j * (WGT / TS)][kk] * wv;
    }
    barrier();
  }

  uint n = nt0 + col;
  if (n < p.nc) {
    for (uint j = 0u; j < PER; ++j) {
      uint m = mt0 + rowb + j * (WGT / TS);
      if (m < p.M) Y[p.y_base + m * p.N + p.n0 + n] = acc[j];
    }
  }
}

#endif
