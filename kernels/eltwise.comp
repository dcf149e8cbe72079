#version 450
// Element-wise ops over n floats: OP_ADD (out = a + b; out may alias a or b), OP_SILU_MUL
// (out = silu(a) * b), OP_GELU / OP_GELU_TANH (out = gelu(a), the exact erf form / Bloom's tanh
// form; two bindings) and OP_BIAS_ADD (a[m, :] += b over rows of o_base columns; two bindings).
// Each invocation owns one element, so aliasing is safe.
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
#if defined(OP_GELU) || defined(OP_GELU_TANH)
layout(std430, binding = 1) buffer OBuf { float O[]; };  // unary: no B (b_base unused)
#elif defined(OP_BIAS_ADD)
layout(std430, binding = 1) buffer BBuf { float B[]; };  // A[i] += B[i % cols], cols = o_base
#else
layout(std430, binding = 1) buffer BBuf { float B[]; };
layout(std430, binding = 2) buffer OBuf { float O[]; };
#endif

#include "ops_common.glsl"

#if defined(OP_GELU)
// GLSL has no erf. Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7 over the real line) is
// within float32 rounding of the exact value at the magnitudes activations take.
float erf_as(float x) {
  float ax = abs(x);
  float t = 1.0 / (1.0 + 0.3275911 * ax);
  float poly =
      t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  float r = 1.0 - poly * exp(-ax * ax);
  return x < 0.0 ? -r : r;
}
#endif

void main() {
  uint i = flat_index();
  if (i >= p.n) return;
  float a = A[p.a_base + i];
#if defined(OP_BIAS_ADD)
  A[p.a_base + i] = a + B[p.b_base + i % p.o_base];
#elif !defined(OP_GELU) && !defined(OP_GELU_TANH)
  float b = B[p.b_base + i];
#endif
#if defined(OP_ADD)
  O[p.o_base + i] = a + b;
#elif defined(OP_SILU_MUL)
  O[p.o_base + i] = a / (1.0 + exp(-a)) * b;
#elif defined(OP_GELU)
  O[p.o_base + i] = 0.5 * a * (1.0 + erf_as(a * 0.70710678118654752));
#elif defined(OP_GELU_TANH)
  // tanh(z) = 1 - 2 / (exp(2z) + 1), clamped so exp cannot overflow (tanh is +-1 there).
  float z = clamp(0.79788456 * a * (1.0 + 0.044715 * a * a), -15.0, 15.0);
  O[p.o_base + i] = a * 0.5 * (1.0 + (1.0 - 2.0 / (exp(2.0 * z) + 1.0)));
#elif defined(OP_BIAS_ADD)
#else
#error "define OP_ADD, OP_SILU_MUL, OP_GELU, OP_GELU_TANH or OP_BIAS_ADD"
#endif
}
