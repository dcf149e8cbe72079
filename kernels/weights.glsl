// Weight decoding for matmul and embedding: one source for every weight dtype, selected by
// WTYPE at compile time. The including shader declares `uint WBUF[]` (a storage buffer read
// as 32-bit words) before including this file, so no feature beyond core Vulkan 1.2 is
// needed: 16-bit and 8-bit fields are extracted from words with shifts.
//
// Weights keep GGUF's byte layout on the device (no repacking), so upload/download are plain
// copies and a tensor view can start at any row. `base` is the view's start inside the bound
// range in the natural unit of the dtype: 32-bit words for f32, 16-bit halves for f16/bf16,
// bytes for q8_0/q4_0 (always even, as blocks are 34 or 18 bytes).
#ifndef KWAAI_WEIGHTS_GLSL
#define KWAAI_WEIGHTS_GLSL

#define WT_F32 0
#define WT_F16 1
#define WT_BF16 2
#define WT_Q8_0 3
#define WT_Q4_0 4

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
#endif

// Value of row `row`, column `k` of a [*, K] weight.
float w_at(uint base, uint K, uint row, uint k) {
#if WTYPE == WT_F32
  return uintBitsToFloat(WBUF[base + row * K + k]);
#elif WTYPE == WT_F16
  return w_half(base + row * K + k);
#elif WTYPE == WT_BF16
  return uintBitsToFloat(w_u16(base + row * K + k) << 16);
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

// The 32 values of block `blk` (columns blk*32 .. blk*32+31) of row `row`; columns at or past
// K read as 0 (only possible for the float dtypes, quantized K is a multiple of 32).
void w_block32(uint base, uint K, uint row, uint blk, out float v[32]) {
#if WTYPE == WT_F32 || WTYPE == WT_F16 || WTYPE == WT_BF16
  uint k0 = blk * 32u;
  if (k0 + 32u <= K) {
#if WTYPE == WT_F32
    uint o = base + row * K + k0;
    for (uint i = 0u; i < 32u; ++i) v[i] = uintBitsToFloat(WBUF[o + i]);
#else
    uint h = base + row * K + k0;
    if ((h & 1u) == 0u) {
      // Aligned: two values per word.
      for (uint i = 0u; i < 16u; ++i) {
        uint wd = WBUF[(h >> 1) + i];
#if WTYPE == WT_F16
        vec2 f = unpackHalf2x16(wd);
        v[2u * i] = f.x;
        v[2u * i + 1u] = f.y;
#else
        v[2u * i] = uintBitsToFloat(wd << 16);
        v[2u * i + 1u] = uintBitsToFloat(wd & 0xFFFF0000u);
#endif
      }
    } else {
      for (uint i = 0u; i < 32u; ++i) v[i] = w_at(base, K, row, k0 + i);
    }
#endif
  } else {
    for (uint i = 0u; i < 32u; ++i) v[i] = (k0 + i < K) ? w_at(base, K, row, k0 + i) : 0.0;
  }
#else
  uint s = base + (row * (K >> 5) + blk) * W_BLOCK_BYTES;
  // The block spans at most 9 (q8_0) / 5 (q4_0) words starting at word s/4; s is even.
  uint w0 = s >> 2;
  uint sh = s & 3u;
#if WTYPE == WT_Q8_0
  uint wd[9];
  for (uint i = 0u; i < 9u; ++i) wd[i] = WBUF[w0 + i];
#else
  uint wd[5];
  for (uint i = 0u; i < 5u; ++i) wd[i] = WBUF[w0 + i];
#endif
  uint dbits = (wd[0] >> (sh << 3)) & 0xFFFFu;
  float d = unpackHalf2x16(dbits).x;
#if WTYPE == WT_Q8_0
  for (uint i = 0u; i < 32u; ++i) {
    uint p = sh + 2u + i;
    int q = int(((wd[p >> 2] >> ((p & 3u) << 3)) & 0xFFu) << 24) >> 24;
    v[i] = float(q) * d;
  }
#else
  for (uint i = 0u; i < 16u; ++i) {
    uint p = sh + 2u + i;
    uint b = (wd[p >> 2] >> ((p & 3u) << 3)) & 0xFFu;
    v[i] = (float(b & 15u) - 8.0) * d;
    v[i + 16u] = (float(b >> 4) - 8.0) * d;
  }
#endif
#endif
}

#endif
