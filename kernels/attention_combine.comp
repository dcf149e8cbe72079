#version 450
// The second half of split (flash-decoding) attention: merges the per-partition results of
// attention.comp's SPLIT variant. One workgroup per (b, t, head), threads over the head dims:
//   m = max_p max_p;  out[d] = sum_p acc_p[d] e^(max_p - m) / sum_p sum_p e^(max_p - m).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint rows;   // B * T * Hq
  uint D;
  uint parts;
  uint o_base;
} p;

layout(std430, binding = 0) readonly buffer PBuf { float PART[]; };
layout(std430, binding = 1) writeonly buffer OBuf { float O[]; };

#include "ops_common.glsl"

void main() {
  uint g = flat_group();
  if (g >= p.rows) return;  // uniform per workgroup
  uint stride = p.D + 2u;
  uint base = g * p.parts * stride;
  float m = -1.0 / 0.0;
  for (uint q = 0u; q < p.parts; ++q) m = max(m, PART[base + q * stride + p.D]);
  float sum = 0.0;
  for (uint q = 0u; q < p.parts; ++q) {
    float pm = PART[base + q * stride + p.D];
    // An empty partition has max -inf: weight 0 (never NaN, since m is finite).
    sum += pm == -1.0 / 0.0 ? 0.0 : PART[base + q * stride + p.D + 1u] * exp(pm - m);
  }
  float inv = 1.0 / sum;
  for (uint d = gl_LocalInvocationID.x; d < p.D; d += gl_WorkGroupSize.x) {
    float a = 0.0;
    for (uint q = 0u; q < p.parts; ++q) {
      float pm = PART[base + q * stride + p.D];
      if (pm != -1.0 / 0.0) a += PART[base + q * stride + d] * exp(pm - m);
    }
    O[p.o_base + g * p.D + d] = a * inv;
  }
}
