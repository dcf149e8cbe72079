#version 450
// Mixture-of-experts helpers (Backend::moe_route, gather_rows, scatter_add_rows):
//  OP_ROUTE: one invocation per row of logits[M,E]: the k largest logits in descending order
//    (ties: lower index; NaN ranks lowest), each pick the best entry ordered after the previous
//    one (O(k E), no scratch: E is 8 to 128 in real MoE models), and their softmax weights
//    renormalised over the k picked;
//  OP_GATHER: out[i, c] = src[idx[i], c] (zero for an index outside [0, R));
//  OP_SCATTER_ADD: y[idx[i], c] += scale[i] * src[i, c] (indices distinct, so no two
//    invocations write one element; an index outside [0, R) is skipped).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

#include "ops_common.glsl"

#if defined(OP_ROUTE)
layout(push_constant) uniform Params {
  uint M;
  uint E;
  uint k;
  uint l_base;
  uint i_base;
  uint w_base;
}
p;
layout(std430, binding = 0) readonly buffer LBuf {
  float L[];
};
layout(std430, binding = 1) writeonly buffer IBuf {
  int IDS[];
};
layout(std430, binding = 2) buffer WBuf {
  float W[];
};

float logit(uint row, uint e) {
  float v = L[p.l_base + row * p.E + e];
  return isnan(v) ? uintBitsToFloat(0xFF800000u) : v;  // NaN ranks as -inf
}

void main() {
  uint row = flat_index();
  if (row >= p.M) return;
  float prev_v = 0.0;
  uint prev_i = 0xFFFFFFFFu;
  float mx = 0.0, picked = 0.0;
  for (uint j = 0u; j < p.k; ++j) {
    float best_v = 0.0;
    uint best_i = 0xFFFFFFFFu;
    for (uint e = 0u; e < p.E; ++e) {
      float v = logit(row, e);
      // Entries ordered after the previous pick: smaller value, or equal value and higher index.
      bool after = prev_i == 0xFFFFFFFFu || v < prev_v || (v == prev_v && e > prev_i);
      if (after && (best_i == 0xFFFFFFFFu || v > best_v)) {
        best_v = v;
        best_i = e;
      }
    }
    if (j == 0u) mx = best_v;
    IDS[p.i_base + row * p.k + j] = int(best_i);
    float w = exp(best_v - mx);
    W[p.w_base + row * p.k + j] = w;
    picked += w;
    prev_v = best_v;
    prev_i = best_i;
  }
  // softmax(all)[picked] / sum(softmax(all)[picked]) = exp(l - max) / sum over the picked.
  for (uint j = 0u; j < p.k; ++j) W[p.w_base + row * p.k + j] /= picked;
}

#elif defined(OP_GATHER)
layout(push_constant) uniform Params {
  uint n;
  uint N;
  uint R;
  uint s_base;
  uint i_base;
  uint o_base;
}
p;
layout(std430, binding = 0) readonly buffer SBuf {
  float S[];
};
layout(std430, binding = 1) readonly buffer IBuf {
  int IDX[];
};
layout(std430, binding = 2) writeonly buffer OBuf {
  float O[];
};

void main() {
  uint g = flat_index();
  if (g >= p.n * p.N) return;
  uint i = g / p.N, c = g % p.N;
  int r = IDX[p.i_base + i];
  O[p.o_base + g] = (r >= 0 && uint(r) < p.R) ? S[p.s_base + uint(r) * p.N + c] : 0.0;
}

#elif defined(OP_SCATTER_ADD)
layout(push_constant) uniform Params {
  uint n;
  uint N;
  uint R;
  uint s_base;
  uint i_base;
  uint c_base;
  uint y_base;
}
p;
layout(std430, binding = 0) readonly buffer SBuf {
  float S[];
};
layout(std430, binding = 1) readonly buffer IBuf {
  int IDX[];
};
layout(std430, binding = 2) readonly buffer CBuf {
  float SCALE[];
};
layout(std430, binding = 3) buffer YBuf {
  float Y[];
};

void main() {
  uint g = flat_index();
  if (g >= p.n * p.N) return;
  uint i = g / p.N, c = g % p.N;
  int r = IDX[p.i_base + i];
  if (r < 0 || uint(r) >= p.R) return;
  Y[p.y_base + uint(r) * p.N + c] += SCALE[p.c_base + i] * S[p.s_base + g];
}
#else
#error "define OP_ROUTE, OP_GATHER or OP_SCATTER_ADD"
#endif
