#version 450
// dst[i] = src[i] over n 32-bit words (any dtype whose views are word aligned; the host
// uses a transfer copy for the rest).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint n;
  uint src_base;
  uint dst_base;
} p;

layout(std430, binding = 0) readonly buffer SBuf { uint S[]; };
layout(std430, binding = 1) writeonly buffer DBuf { uint D[]; };

#include "ops_common.glsl"

void main() {
  uint i = flat_index();
  if (i < p.n) D[p.dst_base + i] = S[p.src_base + i];
}
