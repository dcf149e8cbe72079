#version 450
// dst[i] = src[i] over n 32-bit words (any dtype whose views are word aligned; the host
// uses a transfer copy for the rest). With VEC4 the words move as 16-byte vectors (n and both
// bases in vectors; the host picks it when the views are 16-byte aligned and n % 4 == 0).
// A grid-stride loop over a bounded grid: neighbouring invocations copy neighbouring pieces
// (coalesced on a GPU) and each copies several. On lavapipe the cost is per access: one word
// per invocation ran at 1.75 GB/s (64 MiB buffers), four words per invocation 4.4, vectors
// 4.0-4.1 (the grid-stride loop alone: no gain).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint n;
  uint src_base;
  uint dst_base;
} p;

#ifdef VEC4
#define WORD uvec4
#else
#define WORD uint
#endif
layout(std430, binding = 0) readonly buffer SBuf { WORD S[]; };
layout(std430, binding = 1) writeonly buffer DBuf { WORD D[]; };

#include "ops_common.glsl"

void main() {
  uint stride = gl_NumWorkGroups.x * gl_NumWorkGroups.y * gl_WorkGroupSize.x;
  for (uint i = flat_index(); i < p.n; i += stride) D[p.dst_base + i] = S[p.src_base + i];
}
