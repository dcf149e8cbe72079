#version 450
// y[i] = a * x[i] + b over n elements (grid-stride loop, so any group count covers any n).
// Variants: IN_F16=0 reads f32, IN_F16=1 reads f16 through 16-bit storage. Used by the runtime
// tests and the memory bandwidth probe.
#if IN_F16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"

// Local size 64 unless specialised through constant 0.
layout(local_size_x = 64, local_size_x_id = 0) in;

#if IN_F16
layout(std430, set = 0, binding = 0) readonly buffer X { float16_t x[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
#endif
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint n;
  float a;
  float b;
  uint pad;
} pc;

void main() {
  const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
    y[i] = pc.a * float(x[i]) + pc.b;
  }
}
