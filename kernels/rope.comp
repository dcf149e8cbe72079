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

// Veltkamp split of a into 12-bit halves (a == hi + lo exactly).
void split(float a, out float hi, out float lo) {
  precise float c = 4097.0 * a;
  precise float big = c - a;
  precise float h = c - big;
  precise float l = a - h;
  hi = h;
  lo = l;
}

// The rounding error of prod = a * b, exactly (Dekker).
float two_product_error(float a, float b, float prod) {
  float ah, al, bh, bl;
  split(a, ah, al);
  split(b, bh, bl);
  precise float e = ah * bh - prod;
  e = e + ah * bl;
  e = e + al * bh;
  e = e + al * bl;
  return e;
}

void main() {
  uint half_d = p.D / 2u;
  uint idx = flat_index();
  if (idx >= p.T * p.H * half_d) return;
  uint i = idx % half_d;
  uint th = idx / half_d;  // t * H + h
  uint t = th / p.H;
  // The host stores each inverse frequency as an unevaluated sum hi + lo of two floats
  // (from double). The angle pos * (hi + lo) is reduced to [-pi/4, pi/4] plus a quadrant with
  // an exact product and a three-part pi/2, and sin/cos come from short polynomials:
  // built-in sin/cos are only specified to 2^-11 (lavapipe's are ~2e-4 off), while this
  // keeps ~1e-6 for positions up to ~1e5 without shaderFloat64.
  float pos = float(POS[p.pos_base + t]);
  float hi = INV_FREQ[p.f_base + 2u * i], lo = INV_FREQ[p.f_base + 2u * i + 1u];
  // Exact product pos * hi = prod + err by Dekker's splitting: fma() may not be fused
  // (llvmpipe computes it as a rounded multiply and add), so it cannot provide the error term.
  precise float prod = pos * hi;
  precise float err = two_product_error(pos, hi, prod);
  precise float n = round(prod * 0.63661977236758134);  // 2 / pi
  precise float r = prod - n * 1.5703125;  // exact: n * 1.5703125 needs few mantissa bits
  r = r - n * 4.838267923332751e-4;
  r = r - n * 2.5632829192545614e-12;  // tail of pi/2 not in the two parts above
  r = r + (err + pos * lo);
  float r2 = r * r;
  float sr = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  float cr = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  int quadrant = int(n) & 3;
  float s = quadrant == 0 ? sr : quadrant == 1 ? cr : quadrant == 2 ? -sr : -cr;
  float c = quadrant == 0 ? cr : quadrant == 1 ? -sr : quadrant == 2 ? -cr : sr;
  uint o = p.x_base + th * p.D + i;
  float a = X[o], b = X[o + half_d];
  X[o] = a * c - b * s;
  X[o + half_d] = b * c + a * s;
}
