#version 450
// Element-wise binary ops over n floats: OP_ADD (out = a + b; out may alias a or b) and
// OP_SILU_MUL (out = silu(a) * b). Each invocation owns one element, so aliasing is safe.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint n;
  uint a_base;
  uint b_base;
  uint o_base;
} p;

// Not readonly/writeonly: the host may bind the same buffer to several of these.
layout(std430, binding = 0) buffer ABuf { float A[]; };
layout(std430, binding = 1) buffer BBuf { float B[]; };
layout(std430, binding = 2) buffer OBuf { float O[]; };

#include "ops_common.glsl"

void main() {
  uint i = flat_index();
  if (i >= p.n) return;
  float a = A[p.a_base + i];
  float b = B[p.b_base + i];
#if defined(OP_ADD)
  O[p.o_base + i] = a + b;
#elif defined(OP_SILU_MUL)
  O[p.o_base + i] = a / (1.0 + exp(-a)) * b;
#else
#error "define OP_ADD or OP_SILU_MUL"
#endif
}
