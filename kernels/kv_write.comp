#version 450
// dst[b, pos + t, :] = src[b, t, :] for src[B, T, R] and dst[B, L, R] (R = H * D floats).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint B;
  uint T;
  uint L;
  uint R;
  uint pos;
  uint src_base;
  uint dst_base;
} p;

layout(std430, binding = 0) readonly buffer SBuf { float S[]; };
layout(std430, binding = 1) writeonly buffer DBuf { float D[]; };

#include "ops_common.glsl"

void main() {
  uint idx = flat_index();
  if (idx >= p.B * p.T * p.R) return;
  uint r = idx % p.R;
  uint bt = idx / p.R;
  uint t = bt % p.T, b = bt / p.T;
  D[p.dst_base + (b * p.L + p.pos + t) * p.R + r] = S[p.src_base + idx];
}
