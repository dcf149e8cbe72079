// One "piece" of a weight row: 8 values, read as whole 32-bit words so that neighbouring lanes
// read neighbouring words of one row (coalesced). The decode mat-vec (matvec.comp) reduces
// pieces directly; the tiled matmul (matmul.comp) dequantizes four pieces per row into its
// shared-memory tile for each 32-wide K step (piece k0/8 + q, q = 0..3, for every dtype).
// Included once per weight buffer with PIECE_FN (function name) and PIECE_BUF (the `uint[]`
// array of that buffer) defined, because GLSL cannot pass a buffer to a function.
//
// Piece `i` of a row covers columns piece_cols(i) (see matvec.comp): for every dtype but
// q4_0 these are 8i .. 8i+7; a q4_0 block (18 bytes: f16 scale, 16 bytes of nibbles where
// byte j holds values j and j + 16) is split in 4 pieces of 4 bytes, piece q holding values
// 4q..4q+3 (low nibbles) and 16+4q..16+4q+3 (high nibbles). A q8_0 block (34 bytes: f16
// scale, 32 int8) is split in 4 pieces of 8 bytes.
//
// No local array is indexed by a run-time value: the half-word misalignment of GGUF's 34- and
// 18-byte blocks is resolved by selecting between two constant-indexed word combinations,
// because a dynamically indexed register array goes to (slow) local memory on GPUs and to
// per-lane scratch on llvmpipe.
//
// K-quant pieces are 4 code bytes too, so every byte is read once: Q4_K / Q5_K piece i covers
// columns c0..c0+3 and c0+32..c0+35 with c0 = 64 (i / 8) + 4 (i % 8) (the low and high nibbles
// of qs bytes, two sub-blocks with their own scale and minimum), Q6_K piece i columns c0..c0+3
// and c0+64..c0+67 with c0 = 128 (i / 16) + 32 ((i / 8) % 2) + 4 (i % 8) (the low and high
// nibbles of ql bytes); see engine/core/kquants.hpp for the byte rules. Their values come out
// with every scale applied and d = 1.
//
// `v` gets the 8 values without the block scale, `d` the scale (1 for the float dtypes).
// Columns at or past K read as 0 (only the float dtypes can have K % 8 != 0).

void PIECE_FN(uint base, uint K, uint row, uint i, out float v[8], out float d) {
#if WTYPE == WT_Q8_0 || WTYPE == WT_Q4_0
  uint blk = i >> 2, q = i & 3u;
  uint s = base + (row * (K >> 5) + blk) * W_BLOCK_BYTES;  // block start, a byte (even)
  uint dw = PIECE_BUF[s >> 2];
  d = unpackHalf2x16((s & 2u) != 0u ? dw >> 16 : dw & 0xFFFFu).x;
#if WTYPE == WT_Q8_0
  uint a = s + 2u + 8u * q;  // first code byte of the piece
  uint wi = a >> 2;
  uint w0 = PIECE_BUF[wi], w1 = PIECE_BUF[wi + 1u];
  uint lo = w0, hi = w1;
  if ((a & 2u) != 0u) {
    // The piece starts mid-word; its last two bytes are in the next word, still inside the
    // block (a + 7 < s + 34), so this read never leaves the tensor.
    uint w2 = PIECE_BUF[wi + 2u];
    lo = (w0 >> 16) | (w1 << 16);
    hi = (w1 >> 16) | (w2 << 16);
  }
  for (int j = 0; j < 4; ++j) {
    v[j] = float(bitfieldExtract(int(lo), 8 * j, 8));
    v[4 + j] = float(bitfieldExtract(int(hi), 8 * j, 8));
  }
#else
  uint a = s + 2u + 4u * q;
  uint wi = a >> 2;
  uint b4 = PIECE_BUF[wi];
  if ((a & 2u) != 0u) b4 = (b4 >> 16) | (PIECE_BUF[wi + 1u] << 16);  // a + 3 < s + 18
  for (int j = 0; j < 4; ++j) {
    v[j] = float(int((b4 >> (8 * j)) & 15u) - 8);
    v[4 + j] = float(int((b4 >> (8 * j + 4)) & 15u) - 8);
  }
#endif
#elif WT_KQUANT
  d = 1.0;
  uint sb = i >> 5;  // super-block of the row (32 pieces each)
  uint s = base + (row * (K >> 8) + sb) * W_BLOCK_BYTES;  // block start, a byte (even)
#if WTYPE == WT_Q6_K
  uint hf = (i >> 4) & 1u, sh = (i >> 3) & 1u, q = i & 7u;
  // 210-byte blocks: a block may start mid-word, so 4-byte reads combine two words.
  uint a = s + 64u * hf + 32u * sh + 4u * q, c = s + 128u + 32u * hf + 4u * q;
  uint qw = PIECE_BUF[a >> 2], hw = PIECE_BUF[c >> 2];
  if ((s & 2u) != 0u) {  // a + 5 and c + 5 stay inside the block
    qw = (qw >> 16) | (PIECE_BUF[(a >> 2) + 1u] << 16);
    hw = (hw >> 16) | (PIECE_BUF[(c >> 2) + 1u] << 16);
  }
  uint si = s + 192u + 8u * hf + 2u * sh + (q >> 2);  // scale of the low 4 columns; +4: high
  float sc0 = float(int(((PIECE_BUF[si >> 2] >> (8u * (si & 3u))) & 0xFFu) << 24) >> 24);
  uint si1 = si + 4u;
  float sc1 = float(int(((PIECE_BUF[si1 >> 2] >> (8u * (si1 & 3u))) & 0xFFu) << 24) >> 24);
  uint dwd = PIECE_BUF[(s + 208u) >> 2];
  float dd = unpackHalf2x16(((s + 208u) & 2u) != 0u ? dwd >> 16 : dwd & 0xFFFFu).x;
  float a0 = dd * sc0, a1 = dd * sc1;
  for (int j = 0; j < 4; ++j) {
    uint b = (qw >> (8 * j)) & 0xFFu, h = (hw >> (8 * j)) & 0xFFu;
    uint lo = (b & 15u) | (((h >> (2u * sh)) & 3u) << 4);
    uint hi = (b >> 4) | (((h >> (4u + 2u * sh)) & 3u) << 4);
    v[j] = a0 * (float(lo) - 32.0);
    v[4 + j] = a1 * (float(hi) - 32.0);
  }
#else
  uint pr = (i >> 3) & 3u, q = i & 7u;
  uint wd = s >> 2;  // 144- and 176-byte blocks are word aligned
  vec2 dm = unpackHalf2x16(PIECE_BUF[wd]);
  uint s0 = PIECE_BUF[wd + 1u], s1 = PIECE_BUF[wd + 2u], s2 = PIECE_BUF[wd + 3u];
  float sc0, m0, sc1, m1;
  k_scale_min(2u * pr, s0, s1, s2, sc0, m0);
  k_scale_min(2u * pr + 1u, s0, s1, s2, sc1, m1);
  float a0 = dm.x * sc0, b0 = dm.y * m0, a1 = dm.x * sc1, b1 = dm.y * m1;
#if WTYPE == WT_Q4_K
  uint qw = PIECE_BUF[wd + 4u + 8u * pr + q], hw = 0u;
#else
  uint hw = PIECE_BUF[wd + 4u + q], qw = PIECE_BUF[wd + 12u + 8u * pr + q];
#endif
  for (int j = 0; j < 4; ++j) {
    uint b = (qw >> (8 * j)) & 0xFFu, h = (hw >> (8 * j)) & 0xFFu;
    uint lo = (b & 15u) | (((h >> (2u * pr)) & 1u) << 4);
    uint hi = (b >> 4) | (((h >> (2u * pr + 1u)) & 1u) << 4);
    v[j] = a0 * float(lo) - b0;
    v[4 + j] = a1 * float(hi) - b1;
  }
#endif
#else
  d = 1.0;
  uint k0 = 8u * i;
#if WTYPE == WT_F32
  uint o = base + row * K + k0;
  if (k0 + 8u <= K) {
    for (uint j = 0u; j < 8u; ++j) v[j] = uintBitsToFloat(PIECE_BUF[o + j]);
  } else {
    for (uint j = 0u; j < 8u; ++j) v[j] = k0 + j < K ? uintBitsToFloat(PIECE_BUF[o + j]) : 0.0;
  }
#else
  uint h = base + row * K + k0;  // half index of the piece's first value
  uint wd[4];
  if (k0 + 8u <= K && (h & 1u) == 0u) {
    for (uint j = 0u; j < 4u; ++j) wd[j] = PIECE_BUF[(h >> 1) + j];
  } else {
    // Odd half offset (odd K) or the row's tail: value by value, zero past K.
    for (uint j = 0u; j < 4u; ++j) {
      uint e0 = 0u, e1 = 0u;
      uint c = h + 2u * j;
      if (k0 + 2u * j < K) e0 = (PIECE_BUF[c >> 1] >> ((c & 1u) << 4)) & 0xFFFFu;
      if (k0 + 2u * j + 1u < K)
        e1 = (PIECE_BUF[(c + 1u) >> 1] >> (((c + 1u) & 1u) << 4)) & 0xFFFFu;
      wd[j] = e0 | (e1 << 16);
    }
  }
  for (uint j = 0u; j < 4u; ++j) {
#if WTYPE == WT_F16
    vec2 f = unpackHalf2x16(wd[j]);
    v[2u * j] = f.x;
    v[2u * j + 1u] = f.y;
#else
    v[2u * j] = uintBitsToFloat(wd[j] << 16);
    v[2u * j + 1u] = uintBitsToFloat(wd[j] & 0xFFFF0000u);
#endif
  }
#endif
#endif
}
