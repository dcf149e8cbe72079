// GGUF's K-quants (ggml's "k-quants", what Q4_K_M / Q5_K_M / Q6_K files hold): 256 values per
// super-block, split into sub-blocks that carry their own scale (and for Q4_K / Q5_K a minimum),
// those themselves quantized against f16 super-block scales. Layouts are GGUF's byte for byte:
//   Q4_K (144 B): f16 d, f16 dmin, scales[12], qs[128].
//     Sub-block j (32 values, j = 0..7) has a 6-bit scale sc_j and minimum m_j packed in
//     scales[] (k_scale_min), value = d * sc_j * q - dmin * m_j with q a 4-bit code. Values
//     64p + l and 64p + 32 + l (p = 0..3, l = 0..31) are the low and high nibble of qs[32p + l].
//   Q5_K (176 B): f16 d, f16 dmin, scales[12], qh[32], qs[128]: as Q4_K with a fifth code bit,
//     bit 2p of qh[l] for value 64p + l and bit 2p + 1 for value 64p + 32 + l.
//   Q6_K (210 B): ql[128], qh[64], int8 scales[16], f16 d: value = d * scales[v / 16] * (q - 32)
//     with q a 6-bit code. In half h (values 128h..128h+127, l = 0..31) the low 4 bits of values
//     l, l + 32, l + 64, l + 96 are the low nibble of ql[64h + l], the low nibble of
//     ql[64h + 32 + l], the high nibble of ql[64h + l] and the high nibble of ql[64h + 32 + l];
//     their top 2 bits are bits 0-1, 2-3, 4-5 and 6-7 of qh[32h + l].
// (The layouts and value rules are ggml's, ggml-common.h / ggml-quants.c; the quantizers below
// are this project's own: a min/max start refined by least squares, not ggml's search.)
#pragma once

#include <cstdint>

namespace kwaai::engine {

inline constexpr std::int64_t kSuperBlock = 256;  // values per K-quant block

struct BlockQ4_K {
  std::uint16_t d, dmin;  // f16
  std::uint8_t scales[12];
  std::uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  std::uint16_t d, dmin;  // f16
  std::uint8_t scales[12];
  std::uint8_t qh[kSuperBlock / 8];
  std::uint8_t qs[kSuperBlock / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  std::uint8_t ql[kSuperBlock / 2];
  std::uint8_t qh[kSuperBlock / 4];
  std::int8_t scales[kSuperBlock / 16];
  std::uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6_K) == 210);

// Scale and minimum (6 bits each) of sub-block j (0..7) of a Q4_K / Q5_K block, and the inverse.
void k_scale_min(int j, const std::uint8_t* scales, int& sc, int& m);
void k_pack_scale_min(const int sc[8], const int m[8], std::uint8_t* scales);

// Code of value i (0..255) of a block: 4 bits (Q4_K), 5 bits (Q5_K), 6 bits (Q6_K, unsigned:
// the value is d * scale * (code - 32)); and the setters, which OR the code into a block whose
// code bytes start zeroed.
int q4_k_code(const BlockQ4_K& b, int i);
int q5_k_code(const BlockQ5_K& b, int i);
int q6_k_code(const BlockQ6_K& b, int i);
void q4_k_set_code(BlockQ4_K& b, int i, int q);
void q5_k_set_code(BlockQ5_K& b, int i, int q);
void q6_k_set_code(BlockQ6_K& b, int i, int q);

// n values (n % 256 == 0) to / from f32.
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, std::int64_t n);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, std::int64_t n);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, std::int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, std::int64_t n);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, std::int64_t n);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, std::int64_t n);

}  // namespace kwaai::engine
