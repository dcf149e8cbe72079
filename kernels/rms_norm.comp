#version 450
// y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * weight. One workgroup per row; the sum
// of squares is reduced through shared memory.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint M;
  uint K;
  float eps;
  uint x_base;
  uint w_base;
  uint y_base;
} p;

layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer WBuf { float W[]; };
layout(std430, binding = 2) writeonly buffer YBuf { float Y[]; };

#include "ops_common.glsl"

shared float red[gl_WorkGroupSize.x];

void main() {
  uint row = flat_group();
  if (row >= p.M) return;  // uniform per workgroup
  uint tid = gl_LocalInvocationID.x;
  const uint WG = gl_WorkGroupSize.x;
  uint xo = p.x_base + row * p.K;
  float s = 0.0;
  for (uint k = tid; k < p.K; k += WG) {
    float v = X[xo + k];
    s += v * v;
  }
  red[tid] = s;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h) red[tid] += red[tid + h];
    barrier();
  }
  float inv = inversesqrt(red[0] / float(p.K) + p.eps);
  uint yo = p.y_base + row * p.K;
  for (uint k = tid; k < p.K; k += WG) Y[yo + k] = X[xo + k] * inv * W[p.w_base + k];
}
