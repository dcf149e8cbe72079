#version 450
// hivemind BLOCKWISE_8BIT over blocks of 4096 values, three stages picked by define:
//  OP_ABSMAX:     absmax[b] = max |x| over block b (one workgroup per block)
//  OP_QUANTIZE:   codes[i] = nearest codebook entry to x[i] / absmax (absmax 0 -> 1), ties to
//                 the lower index, found by binary search in the sorted codebook. Codes are
//                 u8; an invocation owns one 32-bit word of the codes buffer, so no 8-bit
//                 storage is needed, and bytes of a word outside the view are kept as they were.
//  OP_DEQUANTIZE: out[i] = codebook[codes[i]] * absmax[i / 4096]
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

const uint BLOCK = 4096u;

layout(push_constant) uniform Params {
  uint n;
  uint x_base;       // f32 values (quantize: input; dequantize: output), in floats
  uint absmax_base;  // in floats
  uint cb_base;      // in floats
  uint codes_base;   // in bytes
} p;

layout(std430, binding = 0) buffer XBuf { float X[]; };
layout(std430, binding = 1) buffer ABuf { float AM[]; };
layout(std430, binding = 2) readonly buffer CBBuf { float CB[]; };
layout(std430, binding = 3) buffer CodeBuf { uint CODES[]; };

#include "ops_common.glsl"

#if defined(OP_ABSMAX)
shared float red[gl_WorkGroupSize.x];

void main() {
  const uint WG = gl_WorkGroupSize.x;
  uint blk = flat_group();
  uint tid = gl_LocalInvocationID.x;
  uint i0 = blk * BLOCK;
  if (i0 >= p.n) return;  // uniform per workgroup
  uint i1 = min(p.n, i0 + BLOCK);
  float m = 0.0;
  for (uint i = i0 + tid; i < i1; i += WG) m = max(m, abs(X[p.x_base + i]));
  red[tid] = m;
  barrier();
  for (uint h = WG / 2u; h > 0u; h >>= 1) {
    if (tid < h) red[tid] = max(red[tid], red[tid + h]);
    barrier();
  }
  if (tid == 0u) AM[p.absmax_base + blk] = red[0];
}

#elif defined(OP_QUANTIZE)
shared float cb[256];

uint nearest_code(float v) {
  uint lo = 0u, hi = 256u;  // first entry >= v
  while (lo < hi) {
    uint mid = (lo + hi) >> 1;
    if (cb[mid] < v) lo = mid + 1u;
    else hi = mid;
  }
  if (lo == 0u) return 0u;
  if (lo == 256u) return 255u;
  float below = abs(v - cb[lo - 1u]);
  float above = abs(cb[lo] - v);
  return below <= above ? lo - 1u : lo;
}

void main() {
  for (uint i = gl_LocalInvocationID.x; i < 256u; i += gl_WorkGroupSize.x) cb[i] = CB[p.cb_base + i];
  barrier();
  uint first_word = p.codes_base >> 2;
  uint last_word = (p.codes_base + p.n + 3u) >> 2;  // exclusive
  uint w = first_word + flat_index();
  if (w >= last_word) return;
  uint word = 0u;
  bool partial = w * 4u < p.codes_base || w * 4u + 4u > p.codes_base + p.n;
  if (partial) word = CODES[w];
  for (uint j = 0u; j < 4u; ++j) {
    uint byte_addr = w * 4u + j;
    if (byte_addr < p.codes_base || byte_addr >= p.codes_base + p.n) continue;
    uint i = byte_addr - p.codes_base;
    float a = AM[p.absmax_base + i / BLOCK];
    if (a == 0.0) a = 1.0;
    uint c = nearest_code(X[p.x_base + i] / a);
    word = (word & ~(0xFFu << (8u * j))) | (c << (8u * j));
  }
  CODES[w] = word;
}

#elif defined(OP_DEQUANTIZE)
void main() {
  uint i = flat_index();
  if (i >= p.n) return;
  uint b = p.codes_base + i;
  uint c = (CODES[b >> 2] >> ((b & 3u) << 3)) & 0xFFu;
  X[p.x_base + i] = CB[p.cb_base + c] * AM[p.absmax_base + i / BLOCK];
}
#else
#error "define OP_ABSMAX, OP_QUANTIZE or OP_DEQUANTIZE"
#endif
