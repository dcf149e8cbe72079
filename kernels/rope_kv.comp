#version 450
// The attention's input step for one segment in one dispatch (rope.comp twice and kv_write.comp
// twice before): for q[B,T,Hq,D], k and v[B,T,Hkv,D], positions[B*T] (row b*T + t) and caches
// [B,L,Hkv,D]:
//   q, k rotated in place (rotate-half RoPE, as rope.comp);
//   k_cache[b, pos + t] = rotated k[b, t];  v_cache[b, pos + t] = v[b, t].
// One invocation per rotated pair of q or k and per value of v: per row, Hq * D/2 q pairs, then
// Hkv * D/2 k pairs, then Hkv * D v values.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint rows;  // B * T
  uint T;
  uint Hq;
  uint Hkv;
  uint D;
  uint L;
  uint pos;
  uint q_base;
  uint k_base;
  uint v_base;
  uint pos_base;
  uint f_base;
  uint kc_base;
  uint vc_base;
} p;

layout(std430, binding = 0) buffer QBuf { float Q[]; };
layout(std430, binding = 1) buffer KBuf { float K[]; };
layout(std430, binding = 2) readonly buffer VBuf { float V[]; };
layout(std430, binding = 3) readonly buffer PBuf { int POS[]; };
layout(std430, binding = 4) readonly buffer FBuf { float INV_FREQ[]; };
layout(std430, binding = 5) writeonly buffer KCBuf { float KC[]; };
layout(std430, binding = 6) writeonly buffer VCBuf { float VC[]; };

#include "ops_common.glsl"

#include "rope_angle.glsl"

void main() {
  uint half_d = p.D / 2u;
  uint q_items = p.Hq * half_d, k_items = p.Hkv * half_d, kv_row = p.Hkv * p.D;
  uint per_row = q_items + k_items + kv_row;
  uint idx = flat_index();
  if (idx >= p.rows * per_row) return;
  uint row = idx / per_row, j = idx % per_row;
  uint b = row / p.T, t = row % p.T;
  // Cache row of this token: [b, pos + t] of [B, L, Hkv * D].
  uint cache_row = (b * p.L + p.pos + t) * kv_row;
  if (j >= q_items + k_items) {
    uint e = j - q_items - k_items;
    VC[p.vc_base + cache_row + e] = V[p.v_base + row * kv_row + e];
    return;
  }
  bool is_q = j < q_items;
  uint pair = is_q ? j : j - q_items;
  uint h = pair / half_d, i = pair % half_d;
  float s, c;
  rope_sincos(float(POS[p.pos_base + row]), INV_FREQ[p.f_base + 2u * i],
              INV_FREQ[p.f_base + 2u * i + 1u], s, c);
  if (is_q) {
    uint o = p.q_base + (row * p.Hq + h) * p.D + i;
    float a = Q[o], bb = Q[o + half_d];
    Q[o] = a * c - bb * s;
    Q[o + half_d] = bb * c + a * s;
  } else {
    uint o = p.k_base + (row * p.Hkv + h) * p.D + i;
    float a = K[o], bb = K[o + half_d];
    float ra = a * c - bb * s, rb = bb * c + a * s;
    K[o] = ra;
    K[o + half_d] = rb;
    KC[p.kc_base + cache_row + h * p.D + i] = ra;
    KC[p.kc_base + cache_row + h * p.D + i + half_d] = rb;
  }
}
