#version 450
// partial[g] = sum of x[g*chunk, min((g+1)*chunk, n)) with chunk = per_group elements; the
// per-workgroup sum goes through common.glsl's kwaai_wg_sum (subgroup or shared-memory tree).
layout(local_size_x = 64, local_size_x_id = 0) in;
#define KWAAI_REDUCE_SIZE gl_WorkGroupSize.x
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer P { float partial[]; };

layout(push_constant) uniform Push {
  uint n;
  uint per_group;
} pc;

void main() {
  const uint begin = gl_WorkGroupID.x * pc.per_group;
  const uint end = min(begin + pc.per_group, pc.n);
  float acc = 0.0;
  for (uint i = begin + gl_LocalInvocationID.x; i < end; i += gl_WorkGroupSize.x) acc += x[i];
  const float total = kwaai_wg_sum(acc);
  if (gl_LocalInvocationID.x == 0u) partial[gl_WorkGroupID.x] = total;
}
