#version 450
// Causal grouped-query attention over a KV cache, one workgroup per (b, t, query head).
//   q[B, T, Hq, D]; k, v[B, L, Hkv, D]; out[B, T, Hq, D]; query t sees rows 0 .. n_past + t
//   (with a sliding window W > 0, the last W of them); ALiBi adds slope_h * (key - query).
// The visible keys are walked in chunks of WG: each thread scores one key of the chunk, the
// workgroup reduces the chunk's max and sum, and the running (max, sum, accumulator) are
// rescaled online (flash-decoding style), so any KV length runs in fixed shared memory.
// The output accumulator is split across threads by dimension (D <= 4 * WG).
//
// SPLIT (decode over a long context, flash-decoding): the keys of each (b, t, head) are cut
// into `parts` partitions of `part_keys`, one workgroup each, so a single sequence at a 4k
// context keeps a whole GPU busy instead of Hq workgroups; each writes its unnormalised
// accumulator and its (max, sum) to PART, and attention_combine.comp merges them.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint B;
  uint T;
  uint Hq;
  uint Hkv;
  uint D;
  uint L;
  uint n_past;
  float scale;
  uint q_base;
  uint k_base;
  uint v_base;
  uint o_base;
  uint parts;      // SPLIT: partitions per (b, t, head)
  uint part_keys;  // SPLIT: keys per partition (a multiple of WG)
  uint window;     // > 0: sliding window, the last `window` keys only
  float alibi_m0;  // > 0: ALiBi (Bloom), slopes m0^(h+1) for h < alibi_n, else
  float alibi_m1;  //   m1^(2(h - alibi_n) + 1); bias slope * (key - query position)
  uint alibi_n;
} p;

layout(std430, binding = 0) readonly buffer QBuf { float Q[]; };
layout(std430, binding = 1) readonly buffer KBuf { float Kc[]; };
layout(std430, binding = 2) readonly buffer VBuf { float Vc[]; };
#ifdef SPLIT
// PART[(g * parts + part) * (D + 2) + ...]: D accumulator values, then max, then sum.
layout(std430, binding = 3) writeonly buffer PBuf { float PART[]; };
#else
layout(std430, binding = 3) writeonly buffer OBuf { float O[]; };
#endif

#include "ops_common.glsl"

const uint MAX_D = 512u;
const uint DPT = 4u;  // output dims per thread
shared float qs[MAX_D];
shared float ps[gl_WorkGroupSize.x];
shared float red[gl_WorkGroupSize.x];

void main() {
  const uint WG = gl_WorkGroupSize.x;
  uint tid = gl_LocalInvocationID.x;
#ifdef SPLIT
  uint gp = flat_group();
  if (gp >= p.B * p.T * p.Hq * p.parts) return;  // uniform per workgroup
  uint g = gp / p.parts, part = gp % p.parts;
#else
  uint g = flat_group();
  if (g >= p.B * p.T * p.Hq) return;  // uniform per workgroup
#endif
  uint h = g % p.Hq;
  uint bt = g / p.Hq;
  uint t = bt % p.T, b = bt / p.T;
  uint hk = h / (p.Hq / p.Hkv);
  uint n_keys = p.n_past + t + 1u;
  uint first_key = p.window > 0u && n_keys > p.window ? n_keys - p.window : 0u;
#ifdef SPLIT
  // Partitions that end before the window start are empty (max -inf, sum 0: the combine skips
  // them).
  uint key_begin = max(part * p.part_keys, first_key);
  uint key_end = min(n_keys, part * p.part_keys + p.part_keys);
#else
  uint key_begin = first_key;
  uint key_end = n_keys;
#endif

  float slope = 0.0;
  if (p.alibi_m0 > 0.0)
    slope = h < p.alibi_n ? pow(p.alibi_m0, float(h + 1u))
                          : pow(p.alibi_m1, float(2u * (h - p.alibi_n) + 1u));
  float query_pos = float(n_keys - 1u);

  uint qo = p.q_base + g * p.D;  // q is [B, T, Hq, D] so (b, t, h) is row g
  for (uint d = tid; d < p.D; d += WG) qs[d] = Q[qo + d] * p.scale;
  barrier();

  float run_max = -1.0 / 0.0;
  float run_sum = 0.0;
  float acc[DPT];
  for (uint j = 0u; j < DPT; ++j) acc[j] = 0.0;
  uint kv_row_stride = p.Hkv * p.D;
  uint kv_off = (b * p.L) * kv_row_stride + hk * p.D;

  for (uint c0 = key_begin; c0 < key_end; c0 += WG) {
    uint key = c0 + tid;
    float s = -1.0 / 0.0;
    if (key < key_end) {
      uint ko = p.k_base + kv_off + key * kv_row_stride;
      s = 0.0;
      for (uint d = 0u; d < p.D; ++d) s += qs[d] * Kc[ko + d];
      s += slope * (float(key) - query_pos);
    }
    red[tid] = s;
    barrier();
    for (uint hh = WG / 2u; hh > 0u; hh >>= 1) {
      if (tid < hh) red[tid] = max(red[tid], red[tid + hh]);
      barrier();
    }
    float new_max = max(run_max, red[0]);
    barrier();
    float e = key < key_end ? exp(s - new_max) : 0.0;
    ps[tid] = e;
    red[tid] = e;
    barrier();
    for (uint hh = WG / 2u; hh > 0u; hh >>= 1) {
      if (tid < hh) red[tid] += red[tid + hh];
      barrier();
    }
    float corr = exp(run_max - new_max);  // 0 on the first chunk (run_max = -inf)
    run_sum = run_sum * corr + red[0];
    run_max = new_max;
    uint nk = min(WG, key_end - c0);
    for (uint j = 0u; j < DPT; ++j) {
      uint d = tid + j * WG;
      if (d < p.D) {
        float a = acc[j] * corr;
        uint vo = p.v_base + kv_off + c0 * kv_row_stride + d;
        for (uint i = 0u; i < nk; ++i) a += ps[i] * Vc[vo + i * kv_row_stride];
        acc[j] = a;
      }
    }
    barrier();  // ps/red are rewritten by the next chunk
  }

#ifdef SPLIT
  // An empty partition (key_begin >= key_end) leaves max = -inf, sum = 0, acc = 0.
  uint po = (g * p.parts + part) * (p.D + 2u);
  for (uint j = 0u; j < DPT; ++j) {
    uint d = tid + j * WG;
    if (d < p.D) PART[po + d] = acc[j];
  }
  if (tid == 0u) {
    PART[po + p.D] = run_max;
    PART[po + p.D + 1u] = run_sum;
  }
#else
  float inv = 1.0 / run_sum;
  for (uint j = 0u; j < DPT; ++j) {
    uint d = tid + j * WG;
    if (d < p.D) O[p.o_base + g * p.D + d] = acc[j] * inv;
  }
#endif
}
