#version 450
// Decode mat-vec: y[M, N] (+)= x[M, K] . w[N, K]^T for M <= 8 activation rows (the server's
// batched step), every weight dtype (WTYPE, see weights.glsl); with GATEUP, the SwiGLU first
// half y = silu(x . wg^T) * (x . wu^T) in one pass over both weights.
//
// Layout of the work (bandwidth is all that matters here, so each weight byte is read once
// and reads are coalesced):
//  - a workgroup of WG threads (spec constant 0) owns NR consecutive output rows (spec 1);
//  - a row is cut in pieces of 8 values (weight_piece.glsl); thread t takes pieces t, t + WG,
//    ..., so neighbouring lanes read neighbouring words of the row;
//  - the activations of a piece (MC rows, spec 2 = the exact M, so no register is spent on
//    absent rows) are loaded once and applied to all NR weight rows;
//  - partial sums stay in registers and are reduced across the workgroup at the end:
//    subgroupAdd and one shared slot per subgroup (SUBGROUP), a shared-memory tree otherwise.
// The activations are not staged in shared memory: every workgroup reads the same few KiB of
// x, which the caches keep, and staging would add a barrier per K chunk.
//
// Weights larger than one storage-buffer binding come as row windows, one dispatch each
// (n0 = first row of the window). `accumulate` adds the product to y (a residual add folded
// into the producing kernel: matmul_add).
#extension GL_GOOGLE_include_directive : require
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(push_constant) uniform Params {
  uint M;        // activation rows (== MC)
  uint N;        // full output width (row stride of y)
  uint K;        // reduction length
  uint n0;       // first weight row of this window (output column offset)
  uint nc;       // weight rows in this window
  uint x_base;   // x view start, in floats
  uint w_base;   // w view start in dtype units (see weights.glsl)
  uint y_base;   // y view start, in floats
  uint w2_base;  // GATEUP: the up projection's view start
  uint accumulate;
} p;

layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer WBufB { uint WBUF[]; };
layout(std430, binding = 2) buffer YBuf { float Y[]; };
#ifdef GATEUP
layout(std430, binding = 3) readonly buffer WBuf2 { uint WBUF2[]; };
#endif

#include "ops_common.glsl"
#include "weights.glsl"

#define PIECE_FN w_piece
#define PIECE_BUF WBUF
#include "weight_piece.glsl"
#undef PIECE_FN
#undef PIECE_BUF
#ifdef GATEUP
#define PIECE_FN w2_piece
#define PIECE_BUF WBUF2
#include "weight_piece.glsl"
#undef PIECE_FN
#undef PIECE_BUF
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NR = 2;  // output rows per workgroup
layout(constant_id = 2) const uint MC = 1;  // activation rows, 1..8

#ifdef GATEUP
const uint NACC = 2u;  // gate and up partial sums per (row, activation row)
#else
const uint NACC = 1u;
#endif

#ifdef SUBGROUP
shared float red[NR * MC * NACC][32];  // one partial per subgroup (<= 32 subgroups)
#else
shared float red[NR * MC * NACC][gl_WorkGroupSize.x];
#endif

// The 8 activations of piece i of activation row m (columns as in weight_piece.glsl).
void x_piece(uint m, uint i, out float xv[8]) {
  uint xo = p.x_base + m * p.K;
#if WTYPE == WT_Q4_0 || WT_KQUANT
#if WTYPE == WT_Q4_0
  uint k0 = (i >> 2) * 32u + 4u * (i & 3u), gap = 16u;
#elif WTYPE == WT_Q6_K
  uint k0 = (i >> 4) * 128u + 32u * ((i >> 3) & 1u) + 4u * (i & 7u), gap = 64u;
#else
  uint k0 = (i >> 3) * 64u + 4u * (i & 7u), gap = 32u;
#endif
  for (uint j = 0u; j < 4u; ++j) {
    xv[j] = X[xo + k0 + j];
    xv[4u + j] = X[xo + k0 + gap + j];
  }
#else
  uint k0 = 8u * i;
  if (k0 + 8u <= p.K) {
    for (uint j = 0u; j < 8u; ++j) xv[j] = X[xo + k0 + j];
  } else {
    for (uint j = 0u; j < 8u; ++j) xv[j] = k0 + j < p.K ? X[xo + k0 + j] : 0.0;
  }
#endif
}

float dot8(float a[8], float b[8]) {
  float s0 = a[0] * b[0] + a[1] * b[1];
  float s1 = a[2] * b[2] + a[3] * b[3];
  float s2 = a[4] * b[4] + a[5] * b[5];
  float s3 = a[6] * b[6] + a[7] * b[7];
  return (s0 + s1) + (s2 + s3);
}

void main() {
  const uint WG = gl_WorkGroupSize.x;
  uint tid = gl_LocalInvocationID.x;
  uint row0 = flat_group() * NR;
  uint npieces = (p.K + 7u) / 8u;  // quantized K is a multiple of 32: 4 pieces per block

  float acc[NR * MC * NACC];
  for (uint a = 0u; a < NR * MC * NACC; ++a) acc[a] = 0.0;

  for (uint i = tid; i < npieces; i += WG) {
    float xv[MC][8];
    for (uint m = 0u; m < MC; ++m) x_piece(m, i, xv[m]);
    for (uint r = 0u; r < NR; ++r) {
      uint row = row0 + r;
      if (row >= p.nc) break;  // uniform: the last workgroup of a window may have fewer rows
      float wv[8];
      float d;
      w_piece(p.w_base, p.K, row, i, wv, d);
      for (uint m = 0u; m < MC; ++m) acc[(r * MC + m) * NACC] += d * dot8(wv, xv[m]);
#ifdef GATEUP
      w2_piece(p.w2_base, p.K, row, i, wv, d);
      for (uint m = 0u; m < MC; ++m) acc[(r * MC + m) * NACC + 1u] += d * dot8(wv, xv[m]);
#endif
    }
  }

  const uint NV = NR * MC * NACC;
#ifdef SUBGROUP
  for (uint a = 0u; a < NV; ++a) {
    float s = subgroupAdd(acc[a]);
    if (subgroupElect()) red[a][gl_SubgroupID] = s;
  }
  barrier();
  // Thread v finishes value v (v < NV): the sum over subgroups.
  for (uint v = tid; v < NV; v += WG) {
    float s = 0.0;
    for (uint g = 0u; g < gl_NumSubgroups; ++g) s += red[v][g];
    red[v][0] = s;
  }
  barrier();
#define RED_AT(v) red[v][0]
#else
  for (uint a = 0u; a < NV; ++a) red[a][tid] = acc[a];
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1) {
    if (tid < s)
      for (uint a = 0u; a < NV; ++a) red[a][tid] += red[a][tid + s];
    barrier();
  }
#define RED_AT(v) red[v][0]
#endif

  for (uint o = tid; o < NR * MC; o += WG) {
    uint r = o / MC, m = o % MC;
    uint row = row0 + r;
    if (row >= p.nc) continue;
#ifdef GATEUP
    float g = RED_AT(o * 2u), u = RED_AT(o * 2u + 1u);
    float val = g / (1.0 + exp(-g)) * u;  // the same expression as eltwise.comp's silu_mul
#else
    float val = RED_AT(o);
#endif
    uint yi = p.y_base + m * p.N + p.n0 + row;
    Y[yi] = p.accumulate != 0u ? Y[yi] + val : val;
  }
}
