// Weight decoding for matmul and embedding: one source for every weight dtype, selected by
// WTYPE at compile time. The including shader declares `uint WBUF[]` (a storage buffer read
// as 32-bit words) before including this file, so no feature beyond core Vulkan 1.2 is
// needed: 16-bit and 8-bit fields are extracted from words with shifts.
//
// Weights keep GGUF's byte layout on the device (no repacking), so upload/download are plain
// copies and a tensor view can start at any row. `base` is the view's start inside the bound
// range in the natural unit of the dtype: 32-bit words for f32, 16-bit halves for f16/bf16,
// bytes for the block formats (always even, as blocks are 34, 18, 144, 176 or 210 bytes).
#ifndef KWAAI_WEIGHTS_GLSL
#define KWAAI_WEIGHTS_GLSL

#define WT_F32 0
#define WT_F16 1
#define WT_BF16 2
#define WT_Q8_0 3
#define WT_Q4_0 4
#define WT_Q4_K 5
#define WT_Q5_K 6
#define WT_Q6_K 7
#define WT_KQUANT (WTYPE == WT_Q4_K || WTYPE == WT_Q5_K || WTYPE == WT_Q6_K)

#ifndef WTYPE
#error "WTYPE must be defined"
#endif

uint w_u16(uint halfIndex) { return (WBUF[halfIndex >> 1] >> ((halfIndex & 1u) << 4)) & 0xFFFFu; }
uint w_byte(uint b) { return (WBUF[b >> 2] >> ((b & 3u) << 3)) & 0xFFu; }
float w_half(uint halfIndex) { return unpackHalf2x16(w_u16(halfIndex)).x; }

#if WTYPE == WT_Q8_0
const uint W_BLOCK_BYTES = 34u;
#elif WTYPE == WT_Q4_0
const uint W_BLOCK_BYTES = 18u;
#elif WTYPE == WT_Q4_K
const uint W_BLOCK_BYTES = 144u;
#elif WTYPE == WT_Q5_K
const uint W_BLOCK_BYTES = 176u;
#elif WTYPE == WT_Q6_K
const uint W_BLOCK_BYTES = 210u;
#endif

// Byte `i` (0..11) of the 12 packed K-quant scale bytes held in three words (selected, not
// indexed, so no register array is indexed at run time).
uint k_sbyte(uint i, uint s0, uint s1, uint s2) {
  uint w = i < 4u ? s0 : (i < 8u ? s1 : s2);
  return (w >> (8u * (i & 3u))) & 0xFFu;
}
// Scale and minimum of sub-block j (0..7) of a Q4_K / Q5_K block (ggml's get_scale_min_k4).
void k_scale_min(uint j, uint s0, uint s1, uint s2, out float sc, out float m) {
  if (j < 4u) {
    sc = float(k_sbyte(j, s0, s1, s2) & 63u);
    m = float(k_sbyte(j + 4u, s0, s1, s2) & 63u);
  } else {
    uint hi = k_sbyte(j + 4u, s0, s1, s2);
    sc = float((hi & 15u) | ((k_sbyte(j - 4u, s0, s1, s2) >> 6) << 4));
    m = float((hi >> 4) | ((k_sbyte(j, s0, s1, s2) >> 6) << 4));
  }
}

// Value of row `row`, column `k` of a [*, K] weight.
float w_at(uint base, uint K, uint row, uint k) {
#if WTYPE == WT_F32
  return uintBitsToFloat(WBUF[base + row * K + k]);
#elif WTYPE == WT_F16
  return w_half(base + row * K + k);
#elif WTYPE == WT_BF16
  return uintBitsToFloat(w_u16(base + row * K + k) << 16);
#elif WT_KQUANT
  // The value rules of engine/core/kquants.hpp.
  uint s = base + (row * (K >> 8) + (k >> 8)) * W_BLOCK_BYTES;  // block start, a byte (even)
  uint i = k & 255u;
#if WTYPE == WT_Q6_K
  uint h = i >> 7, r = i & 127u, quarter = r >> 5, l = r & 31u;
  uint qlb = w_byte(s + 64u * h + (quarter & 1u) * 32u + l);
  uint q = ((quarter >= 2u ? qlb >> 4 : qlb) & 15u) |
           (((w_byte(s + 128u + 32u * h + l) >> (2u * quarter)) & 3u) << 4);
  int sc = int(w_byte(s + 192u + (i >> 4)) << 24) >> 24;
  return w_half((s + 208u) >> 1) * float(sc) * (float(q) - 32.0);
#else
  uint wd = s >> 2;  // 144- and 176-byte blocks: word aligned
  vec2 dm = unpackHalf2x16(WBUF[wd]);
  float sc, m;
  k_scale_min(i >> 5, WBUF[wd + 1u], WBUF[wd + 2u], WBUF[wd + 3u], sc, m);
#if WTYPE == WT_Q4_K
  uint qb = w_byte(s + 16u + (i >> 6) * 32u + (i & 31u));
  uint hb = 0u;
#else
  uint qb = w_byte(s + 48u + (i >> 6) * 32u + (i & 31u));
  uint hb = (w_byte(s + 16u + (i & 31u)) >> (2u * (i >> 6) + ((i & 63u) >= 32u ? 1u : 0u))) & 1u;
#endif
  uint q = (((i & 63u) >= 32u ? qb >> 4 : qb) & 15u) | (hb << 4);
  return dm.x * sc * float(q) - dm.y * m;
#endif
#else
  uint s = base + (row * (K >> 5) + (k >> 5)) * W_BLOCK_BYTES;
  float d = w_half(s >> 1);
  uint j = k & 31u;
#if WTYPE == WT_Q8_0
  int q = int(w_byte(s + 2u + j) << 24) >> 24;  // sign-extend the int8
  return float(q) * d;
#else
  uint b = w_byte(s + 2u + (j & 15u));
  uint nib = j < 16u ? (b & 15u) : (b >> 4);
  return (float(nib) - 8.0) * d;
#endif
#endif
}

#if WT_KQUANT
// The 32-bit word at an even byte address of WBUF (K-quant blocks of 210 bytes may start
// mid-word; callers stay 2 bytes inside the block past the word).
uint w_word(uint a) {
  uint w = WBUF[a >> 2];
  return (a & 2u) == 0u ? w : (w >> 16) | (WBUF[(a >> 2) + 1u] << 16);
}

// Values k0 .. k0 + 7 (k0 % 8 == 0) of row `row`: one sub-block, so one scale (and minimum)
// and 8 consecutive code bytes, for the prefill tile (matmul.comp), whose K steps need
// contiguous columns while the mat-vec pieces of weight_piece.glsl span 64 or 128.
void w_run8(uint base, uint K, uint row, uint k0, out float v[8]) {
  uint s = base + (row * (K >> 8) + (k0 >> 8)) * W_BLOCK_BYTES;
  uint i0 = k0 & 255u;
#if WTYPE == WT_Q6_K
  uint h = i0 >> 7, r = i0 & 127u, quarter = r >> 5, l = r & 31u;
  uint qa = s + 64u * h + (quarter & 1u) * 32u + l, ha = s + 128u + 32u * h + l;
  uint q0 = w_word(qa), q1 = w_word(qa + 4u), h0 = w_word(ha), h1 = w_word(ha + 4u);
  uint qs = quarter >= 2u ? 4u : 0u, hs = 2u * quarter;
  int sc = int(w_byte(s + 192u + (i0 >> 4)) << 24) >> 24;
  float a = w_half((s + 208u) >> 1) * float(sc);
  for (uint t = 0u; t < 8u; ++t) {
    uint qw = t < 4u ? q0 : q1, hw = t < 4u ? h0 : h1, sh = 8u * (t & 3u);
    uint q = ((qw >> (sh + qs)) & 15u) | (((hw >> (sh + hs)) & 3u) << 4);
    v[t] = a * (float(q) - 32.0);
  }
#else
  uint wd = s >> 2;  // 144- and 176-byte blocks: word aligned
  vec2 dm = unpackHalf2x16(WBUF[wd]);
  float sc, m;
  k_scale_min(i0 >> 5, WBUF[wd + 1u], WBUF[wd + 2u], WBUF[wd + 3u], sc, m);
  float a = dm.x * sc, b = dm.y * m;
  uint hi = (i0 & 63u) >= 32u ? 4u : 0u;
#if WTYPE == WT_Q4_K
  uint qw0 = WBUF[wd + 4u + (i0 >> 6) * 8u + ((i0 & 31u) >> 2)];
  uint qw1 = WBUF[wd + 5u + (i0 >> 6) * 8u + ((i0 & 31u) >> 2)];
  uint hw0 = 0u, hw1 = 0u, bit = 0u;
#else
  uint qw0 = WBUF[wd + 12u + (i0 >> 6) * 8u + ((i0 & 31u) >> 2)];
  uint qw1 = WBUF[wd + 13u + (i0 >> 6) * 8u + ((i0 & 31u) >> 2)];
  uint hw0 = WBUF[wd + 4u + ((i0 & 31u) >> 2)], hw1 = WBUF[wd + 5u + ((i0 & 31u) >> 2)];
  uint bit = 2u * (i0 >> 6) + (hi != 0u ? 1u : 0u);
#endif
  for (uint t = 0u; t < 8u; ++t) {
    uint qw = t < 4u ? qw0 : qw1, hw = t < 4u ? hw0 : hw1, sh = 8u * (t & 3u);
    uint q = ((qw >> (sh + hi)) & 15u) | (((hw >> (sh + bit)) & 1u) << 4);
    v[t] = a * float(q) - b;
  }
#endif
}
#endif

#endif
