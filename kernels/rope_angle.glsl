// sin and cos of the RoPE angle pos * inv_freq, shared by rope.comp and rope_kv.comp.

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

// s, c = sin, cos of pos * (hi + lo).
void rope_sincos(float pos, float hi, float lo, out float s, out float c) {
  // The host stores each inverse frequency as an unevaluated sum hi + lo of two floats
  // (from double). The angle pos * (hi + lo) is reduced to [-pi/4, pi/4] plus a quadrant with
  // an exact product and a three-part pi/2, and sin/cos come from short polynomials:
  // built-in sin/cos are only specified to 2^-11 (lavapipe's are ~2e-4 off), while this
  // keeps ~1e-6 for positions up to ~1e5 without shaderFloat64.
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
  s = quadrant == 0 ? sr : quadrant == 1 ? cr : quadrant == 2 ? -sr : -cr;
  c = quadrant == 0 ? cr : quadrant == 1 ? -sr : quadrant == 2 ? -cr : sr;
}
