#version 450
// y[m, :] = (x[m, :] - mean) / sqrt(var + eps) * weight + bias (LayerNorm, biased variance).
// One workgroup per row; the mean and then the centred sum of squares are reduced through
// shared memory (two passes over the row: one-pass E[x^2] - E[x]^2 cancels when the mean is
// large next to the spread).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint M;
  uint K;
  float eps;
  uint x_base;
  uint w_base;
  uint b_base;
  uint y_base;
} p;

layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer WBuf { float W[]; };
layout(std430, binding = 2) readonly buffer BBuf { float B[]; };
layout(std430, binding = 3) writeonly buffer YBuf { float Y[]; };

#include "ops_common.glsl"

shared float red[gl_WorkGroupSize.x];

float row_sum(float s) {
  uint tid = gl_LocalInvocationID.x;
  red[tid] = s;
  barrier();
  for (uint h = gl_WorkGroupSize.x / 2u; h > 0u; h >>= 1) {
    if (tid < h) red[tid] += red[tid + h];
    barrier();
  }
  float total = red[0];
  barrier();  // red is reused by the next reduction
  return total;
}

void main() {
  uint row = flat_group();
  if (row >= p.M) return;  // uniform per workgroup
  uint tid = gl_LocalInvocationID.x;
  const uint WG = gl_WorkGroupSize.x;
  uint xo = p.x_base + row * p.K;
  float s = 0.0;
  for (uint k = tid; k < p.K; k += WG) s += X[xo + k];
  float mean = row_sum(s) / float(p.K);
  float ss = 0.0;
  for (uint k = tid; k < p.K; k += WG) {
    float d = X[xo + k] - mean;
    ss += d * d;
  }
  float inv = inversesqrt(row_sum(ss) / float(p.K) + p.eps);
  uint yo = p.y_base + row * p.K;
  for (uint k = tid; k < p.K; k += WG)
    Y[yo + k] = (X[xo + k] - mean) * inv * W[p.w_base + k] + B[p.b_base + k];
}
