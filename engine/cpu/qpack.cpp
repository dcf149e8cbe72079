#include "engine/cpu/qpack.hpp"

#include "engine/cpu/cpu_ops.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/core/formats.hpp"
#include "engine/core/kquants.hpp"

namespace kwaai::engine::cpu {

namespace {

// GGUF block: f16 scale then the code bytes (BlockQ8_0 / BlockQ4_0).
constexpr std::size_t kScaleBytes = 2;
constexpr std::int64_t kHalfBlock = 32;  // values per packed step block of a 16-bit format

// 16-bit floats: value k of group row `lane` at (k / 32) * 1024 + (k % 32) * 32 + lane * 2.
std::size_t half_offset(std::int64_t k, std::size_t lane) {
  return static_cast<std::size_t>(k) * kPackRows * 2 + lane * 2;
}

}  // namespace

PackGeometry pack_geometry(DType t, std::int64_t rows, std::int64_t cols) {
  const FormatInfo& f = format_info(t);
  if (!f.cpu_packed)
    throw std::invalid_argument("pack_geometry: " + std::string(f.name) +
                                " has no packed CPU layout");
  PackGeometry g;
  g.dtype = t;
  g.rows = rows;
  g.cols = cols;
  g.groups = (rows + kPackRows - 1) / kPackRows;
  if (f.block_elems == 1) {  // 16-bit floats: 32-value steps of 16 rows x 2 bytes, no scales
    if (rows < 0 || cols < 0 || f.block_bytes != 2)
      throw std::invalid_argument("pack_geometry: " + std::string(f.name) + " [" +
                                  std::to_string(rows) + ", " + std::to_string(cols) + "]");
    g.nb = (cols + kHalfBlock - 1) / kHalfBlock;
    g.code_bytes = kHalfBlock * 2;
    g.scaled = false;
    g.group_bytes = static_cast<std::size_t>(g.nb) * kPackRows * g.code_bytes;
    return g;
  }
  if (rows < 0 || cols < 0 || cols % f.block_elems != 0)
    throw std::invalid_argument("pack_geometry: " + std::string(f.name) + " [" +
                                std::to_string(rows) + ", " + std::to_string(cols) +
                                "]: the row length must be a multiple of " +
                                std::to_string(f.block_elems));
  if (f.block_elems == kSuperBlock) {  // K-quants: 32-value code blocks, one record per 256
    g.nb = cols / kQuantBlock;
    g.code_bytes = pack_code_bytes(pack_code_of(t));  // the kernels' own layout constants
    g.meta_blocks = kSuperBlock / kQuantBlock;
    g.meta_bytes = pack_meta_bytes(pack_code_of(t));
    const std::size_t raw = g.scales_at(g.nb);
    g.group_bytes = (raw + kPackChunk - 1) / kPackChunk * kPackChunk;
    return g;
  }
  g.nb = cols / f.block_elems;
  g.code_bytes = f.block_bytes - kScaleBytes;
  const std::size_t raw = static_cast<std::size_t>(g.nb) * kPackRows * f.block_bytes;
  g.group_bytes = (raw + kPackChunk - 1) / kPackChunk * kPackChunk;
  return g;
}

void pack_rows(const PackGeometry& g, const std::byte* src, std::byte* dst) {
  if (!g.scaled) {
    std::memset(dst, 0, g.total_bytes());
    for (std::int64_t r = 0; r < g.rows; ++r) {
      std::byte* grp = dst + static_cast<std::size_t>(r / kPackRows) * g.group_bytes;
      const auto lane = static_cast<std::size_t>(r % kPackRows);
      const std::byte* row = src + static_cast<std::size_t>(r * g.cols) * 2;
      for (std::int64_t k = 0; k < g.cols; ++k)
        std::memcpy(grp + half_offset(k, lane), row + k * 2, 2);
    }
    return;
  }
  if (g.kquant()) {
    pack_rows_k(g, src, dst);
    return;
  }
  const std::size_t bb = g.code_bytes + kScaleBytes;
  const std::size_t row_bytes = static_cast<std::size_t>(g.nb) * bb;
  std::memset(dst, 0, g.total_bytes());
  for (std::int64_t r = 0; r < g.rows; ++r) {
    std::byte* grp = dst + static_cast<std::size_t>(r / kPackRows) * g.group_bytes;
    const std::size_t lane = static_cast<std::size_t>(r % kPackRows);
    const std::byte* row = src + static_cast<std::size_t>(r) * row_bytes;
    for (std::int64_t b = 0; b < g.nb; ++b) {
      const std::byte* blk = row + static_cast<std::size_t>(b) * bb;
      std::byte* codes = grp + static_cast<std::size_t>(b) * kPackRows * g.code_bytes;
      for (std::size_t c = 0; c < g.code_bytes / 4; ++c)
        std::memcpy(codes + c * kPackChunk + lane * 4, blk + kScaleBytes + c * 4, 4);
      std::memcpy(grp + g.scales_offset() + (static_cast<std::size_t>(b) * kPackRows + lane) * 2,
                  blk, kScaleBytes);
    }
  }
}

void unpack_rows(const PackGeometry& g, const std::byte* src, std::byte* dst) {
  if (!g.scaled) {
    for (std::int64_t r = 0; r < g.rows; ++r) {
      const std::byte* grp = src + static_cast<std::size_t>(r / kPackRows) * g.group_bytes;
      const auto lane = static_cast<std::size_t>(r % kPackRows);
      std::byte* row = dst + static_cast<std::size_t>(r * g.cols) * 2;
      for (std::int64_t k = 0; k < g.cols; ++k)
        std::memcpy(row + k * 2, grp + half_offset(k, lane), 2);
    }
    return;
  }
  if (g.kquant()) {
    unpack_rows_k(g, src, dst);
    return;
  }
  const std::size_t bb = g.code_bytes + kScaleBytes;
  const std::size_t row_bytes = static_cast<std::size_t>(g.nb) * bb;
  for (std::int64_t r = 0; r < g.rows; ++r) {
    const std::byte* grp = src + static_cast<std::size_t>(r / kPackRows) * g.group_bytes;
    const std::size_t lane = static_cast<std::size_t>(r % kPackRows);
    std::byte* row = dst + static_cast<std::size_t>(r) * row_bytes;
    for (std::int64_t b = 0; b < g.nb; ++b) {
      std::byte* blk = row + static_cast<std::size_t>(b) * bb;
      const std::byte* codes = grp + static_cast<std::size_t>(b) * kPackRows * g.code_bytes;
      for (std::size_t c = 0; c < g.code_bytes / 4; ++c)
        std::memcpy(blk + kScaleBytes + c * 4, codes + c * kPackChunk + lane * 4, 4);
      std::memcpy(blk,
                  grp + g.scales_offset() + (static_cast<std::size_t>(b) * kPackRows + lane) * 2,
                  kScaleBytes);
    }
  }
}

void packed_row_to_f32(const PackGeometry& g, const std::byte* packed, std::int64_t r, float* out) {
  if (r < 0 || r >= g.rows)
    throw std::out_of_range("packed_row_to_f32: row " + std::to_string(r) + " of " +
                            std::to_string(g.rows));
  thread_local std::vector<std::byte> row;
  if (!g.scaled) {
    row.resize(static_cast<std::size_t>(g.cols) * 2);
    const std::byte* grp = packed + static_cast<std::size_t>(r / kPackRows) * g.group_bytes;
    const auto lane = static_cast<std::size_t>(r % kPackRows);
    for (std::int64_t k = 0; k < g.cols; ++k)
      std::memcpy(row.data() + k * 2, grp + half_offset(k, lane), 2);
    format_info(g.dtype).to_f32(row.data(), out, g.cols);
    return;
  }
  if (g.kquant()) {
    row.resize(dtype_bytes(g.dtype, g.cols));
    unpack_lane_k(g, packed + static_cast<std::size_t>(r / kPackRows) * g.group_bytes,
                  static_cast<int>(r % kPackRows), row.data());
    format_info(g.dtype).to_f32(row.data(), out, g.cols);
    return;
  }
  // Reassemble the row's GGUF blocks, then decode them with the format table's reference.
  const std::size_t bb = g.code_bytes + kScaleBytes;
  row.resize(static_cast<std::size_t>(g.nb) * bb);
  const std::byte* grp = packed + static_cast<std::size_t>(r / kPackRows) * g.group_bytes;
  const std::size_t lane = static_cast<std::size_t>(r % kPackRows);
  for (std::int64_t b = 0; b < g.nb; ++b) {
    std::byte* blk = row.data() + static_cast<std::size_t>(b) * bb;
    const std::byte* codes = grp + static_cast<std::size_t>(b) * kPackRows * g.code_bytes;
    for (std::size_t c = 0; c < g.code_bytes / 4; ++c)
      std::memcpy(blk + kScaleBytes + c * 4, codes + c * kPackChunk + lane * 4, 4);
    std::memcpy(blk, grp + g.scales_offset() + (static_cast<std::size_t>(b) * kPackRows + lane) * 2,
                kScaleBytes);
  }
  format_info(g.dtype).to_f32(row.data(), out, g.cols);
}

void FloatActPack::reset(std::int64_t M, std::int64_t K, int tile_rows) {
  if (tile_rows < 1 || tile_rows > kMaxGemmRows)
    throw std::invalid_argument("FloatActPack: tile rows " + std::to_string(tile_rows));
  M_ = M;
  K_ = K;
  Kp_ = (K + kHalfBlock - 1) / kHalfBlock * kHalfBlock;
  tile_rows_ = tile_rows;
  tiles_ = (M + tile_rows - 1) / tile_rows;
  xt_.resize(static_cast<std::size_t>(tiles_ * tile_rows * Kp_));
}

FloatTile FloatActPack::tile(std::int64_t t) const {
  FloatTile a;
  a.mr = static_cast<int>(std::min<std::int64_t>(tile_rows_, M_ - t * tile_rows_));
  a.xt = xt_.data() + t * tile_rows_ * Kp_;
  return a;
}

void FloatActPack::fill_tiles(const float* x, std::int64_t t0, std::int64_t t1) {
  for (std::int64_t t = t0; t < t1; ++t) {
    const std::int64_t m0 = t * tile_rows_;
    const std::int64_t mr = std::min<std::int64_t>(tile_rows_, M_ - m0);
    float* xt = xt_.data() + m0 * Kp_;
    for (std::int64_t m = 0; m < mr; ++m) {
      const float* row = x + (m0 + m) * K_;
      for (std::int64_t k = 0; k < K_; ++k) xt[k * mr + m] = row[k];
      for (std::int64_t k = K_; k < Kp_; ++k) xt[k * mr + m] = 0.0f;
    }
  }
}

void ActPack::reset(std::int64_t M, std::int64_t K, int tile_rows) {
  if (K % kQuantBlock != 0 || tile_rows < 1 || tile_rows > kMaxGemmRows)
    throw std::invalid_argument("ActPack: K " + std::to_string(K) + ", tile rows " +
                                std::to_string(tile_rows));
  M_ = M;
  K_ = K;
  nb_ = K / kQuantBlock;
  tile_rows_ = tile_rows;
  tiles_ = (M + tile_rows - 1) / tile_rows;
  qs_.resize(static_cast<std::size_t>(M * K));
  d_.resize(static_cast<std::size_t>(M * nb_));
  bias_.resize(static_cast<std::size_t>(M * nb_));
  hsum_.resize(static_cast<std::size_t>(M * nb_));
  dbias_.resize(static_cast<std::size_t>(M * nb_));
}

ActTile ActPack::tile(std::int64_t t) const {
  const std::int64_t m0 = t * tile_rows_;
  ActTile a;
  a.mr = static_cast<int>(std::min<std::int64_t>(tile_rows_, M_ - m0));
  a.qs = qs_.data() + m0 * K_;
  a.d = d_.data() + m0 * nb_;
  a.bias = bias_.data() + m0 * nb_;
  a.hsum = hsum_.data() + m0 * nb_;
  a.dbias = dbias_.data() + m0 * nb_;
  a.stream = M_ <= kDecodeMaxRows;
  return a;
}

void ActPack::quantize_tiles(const float* x, QuantizeFn quantize, std::int32_t offset,
                             std::int64_t t0, std::int64_t t1) {
  thread_local std::vector<BlockQ8Act> row;
  row.resize(static_cast<std::size_t>(nb_));
  for (std::int64_t t = t0; t < t1; ++t) {
    const std::int64_t m0 = t * tile_rows_;
    const std::int64_t mr = std::min<std::int64_t>(tile_rows_, M_ - m0);
    std::int8_t* qs = qs_.data() + m0 * K_;
    float* d = d_.data() + m0 * nb_;
    std::int32_t* bias = bias_.data() + m0 * nb_;
    std::int32_t* hsum = hsum_.data() + m0 * nb_;
    float* dbias = dbias_.data() + m0 * nb_;
    for (std::int64_t m = 0; m < mr; ++m) {
      quantize(x + (m0 + m) * K_, row.data(), nb_);
      for (std::int64_t b = 0; b < nb_; ++b) {
        const BlockQ8Act& blk = row[static_cast<std::size_t>(b)];
        std::memcpy(qs + (b * mr + m) * kQuantBlock, blk.qs, kQuantBlock);
        d[b * mr + m] = blk.d;
        bias[b * mr + m] = -offset * blk.sum;
        std::int32_t h = 0;
        for (int i = 0; i < kQuantBlock / 2; ++i) h += blk.qs[i];
        hsum[b * mr + m] = h;
        dbias[b * mr + m] = static_cast<float>(bias[b * mr + m]) * blk.d;
      }
    }
  }
}

}  // namespace kwaai::engine::cpu
