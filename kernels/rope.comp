#version 450
// Rotate-half RoPE in place on x[T, H, D]: the pair (i, i + D/2) of every head of token t is
// rotated by positions[t] * inv_freq[i]. The host computes inv_freq (theta power and the
// Llama-3 frequency scaling) in double precision once per configuration (INV_FREQ holds
// [hi, lo] float pairs), so the angles match the CPU path's double angles closely.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint T;
  uint H;
  uint D;
  uint x_base;
  uint pos_base;
  uint f_base;
} p;

layout(std430, binding = 0) buffer XBuf { float X[]; };
layout(std430, binding = 1) readonly buffer PBuf { int POS[]; };
layout(std430, binding = 2) readonly buffer FBuf { float INV_FREQ[]; };

#include "ops_common.glsl"

#include "rope_angle.glsl"

void main() {
  uint half_d = p.D / 2u;
  uint idx = flat_index();
  if (idx >= p.T * p.H * half_d) return;
  uint i = idx % half_d;
  uint th = idx / half_d;  // t * H + h
  uint t = th / p.H;
  float s, c;
  rope_sincos(float(POS[p.pos_base + t]), INV_FREQ[p.f_base + 2u * i],
              INV_FREQ[p.f_base + 2u * i + 1u], s, c);
  uint o = p.x_base + th * p.D + i;
  float a = X[o], b = X[o + half_d];
  X[o] = a * c - b * s;
  X[o + half_d] = b * c + a * s;
}
