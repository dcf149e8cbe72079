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

#endif
