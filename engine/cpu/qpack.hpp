// The CPU backend's storage layout for block-quantized weights (formats whose table row has
// cpu_packed), and the activation layout its integer kernels read.
//
// Weights: rows are taken 16 at a time (a group; the last one padded with zero rows). Within a
// group, block b of all 16 rows is stored as chunks of 64 bytes, chunk c holding bytes
// 4c..4c+3 of each row's codes (row r at byte 4r): one 512-bit load is then 16 rows × 4 codes,
// exactly the operand vpdpbusd multiplies against 4 broadcast activation bytes, so a kernel
// produces 16 outputs per instruction with no horizontal sums — the same kernel serves decode
// (1..8 activation rows) and prefill (tiles of rows), and the weights stream in order.
//   Q8_0: 8 chunks per block, the int8 codes as in GGUF;
//   Q4_0: 4 chunks per block, GGUF's code bytes (low nibble value j, high nibble value j+16).
// After a group's nb code blocks come its nb × 16 f16 scales (block b's 16 at index 16 b);
// the group is padded to 64 bytes. Bytes per row and block equal GGUF's (34 and 18).
// K-quants (Q4_K, Q5_K, Q6_K; engine/core/kquants.hpp) take the same 32-value code blocks (so
// the kernels' inner loops are Q4_0's), the codes unsigned and regrouped from GGUF's order:
//   chunks 0-3: byte t of chunk c holds the low 4 bits of values 4c+t (low nibble) and
//     16+4c+t (high nibble) of the 32-value block, as Q4_0;
//   Q5_K chunk 4: bit c of byte t is bit 4 of value 4c+t, bit 4+c bit 4 of value 16+4c+t;
//   Q6_K chunks 4, 5: bits 2c..2c+1 of byte t are bits 4-5 of value 4c+t (chunk 4) and of
//     value 16+4c+t (chunk 5),
// so a value's high bits move into place with one shift and mask per chunk. After the codes
// come the super-blocks' scales, one record per 256 values (8 code blocks) and group:
//   Q4_K / Q5_K (320 B): f16 d[16], f16 dmin[16], u8 sc[8][16], u8 m[8][16] (32-value sub-block
//     j of lane r at [j][r], the 6-bit values unpacked);
//   Q6_K (288 B): f16 d[16], int8 sc[16][16] (16-value sub-blocks).
// Per row and 256 values that is 148 / 180 / 210 bytes against GGUF's 144 / 176 / 210 (4.625,
// 5.625 and 6.5625 bits per value).
// 16-bit float weights (f16, bf16) take the same 16-row groups with one value per row per step:
// value k of the 16 rows is 32 contiguous bytes at k * 32 (one 512-bit load widens to 16
// floats), K padded with zeros to a multiple of 32 and no scales; their kernels meet f32
// activations (not quantized), tiles transposed to [K][mr] for the same constant offsets.
// The layout is private to the CPU backend: upload and download convert from and to GGUF's
// row layout, so the Backend contract is unchanged.
//
// Activations: each matmul quantizes x once (BlockQ8Act's rule, d = absmax / 127 per 32 values)
// into tiles of up to `gemm_rows` rows; tile-major, block-major inside a tile, so a kernel reads
// one tile with constant offsets: codes [nb][mr][32], scales d[nb][mr], and bias[nb][mr] =
// -offset * sum(codes) where `offset` is the code offset the kernel adds to make weight codes
// unsigned (128 for Q8_0, 8 for Q4_0 on the VNNI tables; see KernelTable::q8_0_act_offset; 1
// for the K-quants, whose kernels read -sum as the term their minimum or code offset meets),
// hsum[nb][mr], the sum of the first 16 codes of each block (Q6_K's 16-value scales), and
// dbias[nb][mr] = float(bias) * d, the factor the Q4_K / Q5_K minimum meets (computed once per
// matmul rather than once per kernel call and group).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/core/dtype.hpp"
#include "engine/cpu/kernels.hpp"

namespace kwaai::engine::cpu {

inline constexpr std::int64_t kPackRows = 16;  // rows per group
inline constexpr std::size_t kPackChunk = 64;  // bytes per chunk (16 rows x 4 codes)

struct PackGeometry {
  DType dtype = DType::Q8_0;
  std::int64_t rows = 0, cols = 0;  // logical [rows, cols]
  std::int64_t nb = 0;              // blocks per row
  std::int64_t groups = 0;          // ceil(rows / 16)
  std::size_t code_bytes = 0;       // code bytes per row and block (32, 16; 64 for 16-bit floats)
  std::size_t group_bytes = 0;      // stride between groups (multiple of 64)
  bool scaled = true;               // block-quantized (scales after the codes); false: f16/bf16
  // Code blocks per scale record and the record's bytes per group: 1 and 32 (16 f16 scales) for
  // Q8_0 / Q4_0, 8 and 320 / 288 for the K-quants.
  std::int64_t meta_blocks = 1;
  std::size_t meta_bytes = 32;
  std::size_t total_bytes() const { return static_cast<std::size_t>(groups) * group_bytes; }
  std::size_t scales_offset() const {
    return static_cast<std::size_t>(nb) * kPackRows * code_bytes;
  }
  // Byte offset inside a group of the scale record of code block b (b % meta_blocks == 0).
  std::size_t scales_at(std::int64_t b) const {
    return scales_offset() + static_cast<std::size_t>(b / meta_blocks) * meta_bytes;
  }
  bool kquant() const { return meta_blocks > 1; }
};

// Geometry of a packed [rows, cols] tensor of `t` (a cpu_packed format); throws
// std::invalid_argument when cols is not a whole number of blocks.
PackGeometry pack_geometry(DType t, std::int64_t rows, std::int64_t cols);

// GGUF row layout <-> packed. `src`/`dst` hold rows * dtype_bytes(t, cols) bytes; the packed
// side total_bytes(). Padding rows are written as zeros.
void pack_rows(const PackGeometry& g, const std::byte* src, std::byte* dst);
void unpack_rows(const PackGeometry& g, const std::byte* src, std::byte* dst);
// Row `r` of a packed tensor as f32 (embedding lookups).
void packed_row_to_f32(const PackGeometry& g, const std::byte* packed, std::int64_t r, float* out);
// The K-quant forms of the two (engine/cpu/qpack_k.cpp); pack_rows / unpack_rows call them.
void pack_rows_k(const PackGeometry& g, const std::byte* src, std::byte* dst);
void unpack_rows_k(const PackGeometry& g, const std::byte* src, std::byte* dst);
// Row `lane` of one packed K-quant group as its GGUF blocks (dtype_bytes(g.dtype, g.cols)).
void unpack_lane_k(const PackGeometry& g, const std::byte* group, int lane, std::byte* row);

// x[M, K] as f32 tiles of up to `tile_rows` rows for the 16-bit float kernels: tile t holds
// [Kp][mr] (value k of row m at k * mr + m), Kp = K rounded up to 32, zero past K.
class FloatActPack {
 public:
  void reset(std::int64_t M, std::int64_t K, int tile_rows);
  void fill_tiles(const float* x, std::int64_t t0, std::int64_t t1);
  std::int64_t tiles() const { return tiles_; }
  int tile_rows() const { return tile_rows_; }
  FloatTile tile(std::int64_t t) const;

 private:
  std::int64_t M_ = 0, K_ = 0, Kp_ = 0, tiles_ = 0;
  int tile_rows_ = 1;
  std::vector<float> xt_;
};

// x[M, K] quantized into tiles of `tile_rows` rows (the last one may be shorter).
class ActPack {
 public:
  // Sizes the buffers; reuses capacity across calls.
  void reset(std::int64_t M, std::int64_t K, int tile_rows);
  // Quantizes the rows of tiles [t0, t1) with `quantize` (a KernelTable's quantize_act) and
  // sets bias = -offset * sum(codes). Disjoint ranges may run on different threads.
  using QuantizeFn = void (*)(const float* x, BlockQ8Act* y, std::int64_t nblocks);
  void quantize_tiles(const float* x, QuantizeFn quantize, std::int32_t offset, std::int64_t t0,
                      std::int64_t t1);
  std::int64_t tiles() const { return tiles_; }
  ActTile tile(std::int64_t t) const;
  int tile_rows() const { return tile_rows_; }

 private:
  std::int64_t M_ = 0, K_ = 0, nb_ = 0, tiles_ = 0;
  int tile_rows_ = 1;
  std::vector<std::int8_t> qs_;
  std::vector<float> d_;
  std::vector<std::int32_t> bias_, hsum_;
  std::vector<float> dbias_;
};

}  // namespace kwaai::engine::cpu
