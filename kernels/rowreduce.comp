#version 450
// Row-wise reductions over x[M, N], one workgroup per row:
//  OP_SOFTMAX: out[m, :] = exp(x - max) / sum(exp(x - max))
//  OP_ARGMAX:  out_i32[m] = index of the largest value (ties and NaN-free rows: lowest index)
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint M;
  uint N;
  uint x_base;
  uint o_base;
} p;

layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
#ifdef OP_ARGMAX
layout(std430, binding = 1) writeonly buffer OBuf { int O[]; };
#else
layout(std430, binding = 1) writeonly buffer OBuf { float O[]; };
#endif

#include "ops_common.glsl"

shared float red[gl_WorkGroupSize.x];
#ifdef OP_ARGMAX
shared uint redi[gl_WorkGroupSize.x];
#endif

void main() {
  const uint WG = gl_WorkGroupSize.x;
  uint row = flat_group();
  if (row >= p.M) return;  // uniform per workgroup
  uint tid = gl_LocalInvocationID.x;
  uint xo = p.x_base + row * p.N;
#ifdef OP_ARGMAX
  float best = -1.0 / 0.0;
  uint bi = 0xFFFFFFFFu;
  for (uint i = tid; i < p.N; i += WG) {
    float v = X[xo + i];
    if (bi == 0xFFFFFFFFu || v > best) {  // strided ascending: first max seen is lowest
      best = v;
      bi = i;
    }
  }
  red[tid] = best;
  redi[tid] = bi;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h) {
      float ov = red[tid + h];
      uint oi = redi[tid + h];
      bool take = oi != 0xFFFFFFFFu &&
                  (redi[tid] == 0xFFFFFFFFu || ov > red[tid] || (ov == red[tid] && oi < redi[tid]));
      if (take) {
        red[tid] = ov;
        redi[tid] = oi;
      }
    }
    barrier();
  }
  if (tid == 0u) O[p.o_base + row] = int(redi[0]);
#else
  float mx = -1.0 / 0.0;
  for (uint i = tid; i < p.N; i += WG) mx = max(mx, X[xo + i]);
  red[tid] = mx;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h) red[tid] = max(red[tid], red[tid + h]);
    barrier();
  }
  mx = red[0];
  barrier();
  float s = 0.0;
  for (uint i = tid; i < p.N; i += WG) s += exp(X[xo + i] - mx);
  red[tid] = s;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h) red[tid] += red[tid + h];
    barrier();
  }
  float inv = 1.0 / red[0];
  uint oo = p.o_base + row * p.N;
  for (uint i = tid; i < p.N; i += WG) O[oo + i] = exp(X[xo + i] - mx) * inv;
#endif
}
