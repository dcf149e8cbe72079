// The packed CPU layout of the K-quants (engine/cpu/qpack.hpp has the layout): GGUF's
// super-blocks to 16-row groups of 32-value code blocks plus one scale record per 256 values,
// and back. Both directions are pure rearrangements of the same bits, so a download returns
// the uploaded bytes exactly.
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/core/formats.hpp"
#include "engine/core/kquants.hpp"
#include "engine/cpu/qpack.hpp"

namespace kwaai::engine::cpu {

namespace {

// One super-block of one row, unpacked.
struct KBlock {
  std::uint16_t d = 0, dmin = 0;
  int sc[16] = {};  // 8 six-bit scales (Q4_K, Q5_K) or 16 int8 scales (Q6_K)
  int m[8] = {};
  std::uint8_t code[kSuperBlock] = {};
};

// Q4_K / Q5_K: f16 d and dmin, eight packed 6-bit scale/minimum pairs, codes by the accessor.
template <typename Block, int (*Code)(const Block&, int)>
void parse_scale_min(const std::byte* src, KBlock& k) {
  Block b;
  std::memcpy(&b, src, sizeof b);
  k.d = b.d;
  k.dmin = b.dmin;
  for (int j = 0; j < 8; ++j) k_scale_min(j, b.scales, k.sc[j], k.m[j]);
  for (int i = 0; i < kSuperBlock; ++i) k.code[i] = static_cast<std::uint8_t>(Code(b, i));
}

template <typename Block, void (*SetCode)(Block&, int, int)>
void build_scale_min(const KBlock& k, std::byte* dst) {
  Block b{};
  b.d = k.d;
  b.dmin = k.dmin;
  k_pack_scale_min(k.sc, k.m, b.scales);
  for (int i = 0; i < kSuperBlock; ++i) SetCode(b, i, k.code[i]);
  std::memcpy(dst, &b, sizeof b);
}

void parse(DType t, const std::byte* src, KBlock& k) {
  if (t == DType::Q4_K) return parse_scale_min<BlockQ4_K, q4_k_code>(src, k);
  if (t == DType::Q5_K) return parse_scale_min<BlockQ5_K, q5_k_code>(src, k);
  BlockQ6_K b;
  std::memcpy(&b, src, sizeof b);
  k.d = b.d;
  for (int j = 0; j < 16; ++j) k.sc[j] = b.scales[j];
  for (int i = 0; i < kSuperBlock; ++i) k.code[i] = static_cast<std::uint8_t>(q6_k_code(b, i));
}

void build(DType t, const KBlock& k, std::byte* dst) {
  if (t == DType::Q4_K) return build_scale_min<BlockQ4_K, q4_k_set_code>(k, dst);
  if (t == DType::Q5_K) return build_scale_min<BlockQ5_K, q5_k_set_code>(k, dst);
  BlockQ6_K b{};
  b.d = k.d;
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<std::int8_t>(k.sc[j]);
  for (int i = 0; i < kSuperBlock; ++i) q6_k_set_code(b, i, k.code[i]);
  std::memcpy(dst, &b, sizeof b);
}

// Byte `t` (0..3) of chunk `c` of a 32-value code block, from / to the block's codes.
std::uint8_t chunk_byte(DType t, const std::uint8_t* v, int c, int byte) {
  if (c < 4)
    return static_cast<std::uint8_t>((v[4 * c + byte] & 15) | ((v[16 + 4 * c + byte] & 15) << 4));
  unsigned out = 0;
  if (t == DType::Q5_K) {
    for (int i = 0; i < 4; ++i)
      out |= ((v[4 * i + byte] >> 4) & 1u) << i | ((v[16 + 4 * i + byte] >> 4) & 1u) << (4 + i);
  } else {
    const int base = c == 4 ? 0 : 16;
    for (int i = 0; i < 4; ++i) out |= ((v[base + 4 * i + byte] >> 4) & 3u) << (2 * i);
  }
  return static_cast<std::uint8_t>(out);
}

void add_chunk_byte(DType t, std::uint8_t* v, int c, int byte, std::uint8_t x) {
  if (c < 4) {
    v[4 * c + byte] |= x & 15;
    v[16 + 4 * c + byte] |= x >> 4;
    return;
  }
  if (t == DType::Q5_K) {
    for (int i = 0; i < 4; ++i) {
      v[4 * i + byte] |= static_cast<std::uint8_t>(((x >> i) & 1) << 4);
      v[16 + 4 * i + byte] |= static_cast<std::uint8_t>(((x >> (4 + i)) & 1) << 4);
    }
    return;
  }
  const int base = c == 4 ? 0 : 16;
  for (int i = 0; i < 4; ++i)
    v[base + 4 * i + byte] |= static_cast<std::uint8_t>(((x >> (2 * i)) & 3) << 4);
}

// Offsets of lane `lane`'s fields in a scale record at `at` inside a group.
struct Rec {
  std::size_t at;
  DType t;
  std::size_t lane;
  std::size_t d() const { return at + 2 * lane; }
  std::size_t dmin() const { return at + 32 + 2 * lane; }
  std::size_t sc(int j) const { return at + (t == DType::Q6_K ? 32 : 64) + 16 * j + lane; }
  std::size_t m(int j) const { return at + 192 + 16 * j + lane; }
};

void check(const PackGeometry& g) {
  if (!g.kquant() || g.cols % kSuperBlock != 0)
    throw std::invalid_argument("pack_rows_k: " + std::string(dtype_name(g.dtype)) + " [" +
                                std::to_string(g.rows) + ", " + std::to_string(g.cols) + "]");
}

}  // namespace

void pack_rows_k(const PackGeometry& g, const std::byte* src, std::byte* dst) {
  check(g);
  std::memset(dst, 0, g.total_bytes());
  const std::size_t sb_bytes = format_info(g.dtype).block_bytes;
  const std::int64_t nsb = g.cols / kSuperBlock,
                     chunks = static_cast<std::int64_t>(g.code_bytes / 4);
  KBlock k;
  for (std::int64_t r = 0; r < g.rows; ++r) {
    auto* grp = reinterpret_cast<std::uint8_t*>(dst) +
                static_cast<std::size_t>(r / kPackRows) * g.group_bytes;
    const int lane = static_cast<int>(r % kPackRows);
    for (std::int64_t s = 0; s < nsb; ++s) {
      parse(g.dtype, src + static_cast<std::size_t>(r * nsb + s) * sb_bytes, k);
      for (int j = 0; j < 8; ++j) {
        const std::int64_t b = s * 8 + j;
        std::uint8_t* blk = grp + static_cast<std::size_t>(b) * kPackRows * g.code_bytes;
        for (std::int64_t c = 0; c < chunks; ++c)
          for (int t = 0; t < 4; ++t)
            blk[c * kPackChunk + lane * 4 + t] =
                chunk_byte(g.dtype, k.code + 32 * j, static_cast<int>(c), t);
      }
      const Rec rec{g.scales_at(s * 8), g.dtype, static_cast<std::size_t>(lane)};
      std::memcpy(grp + rec.d(), &k.d, 2);
      if (g.dtype == DType::Q6_K) {
        for (int j = 0; j < 16; ++j)
          grp[rec.sc(j)] = static_cast<std::uint8_t>(static_cast<std::int8_t>(k.sc[j]));
      } else {
        std::memcpy(grp + rec.dmin(), &k.dmin, 2);
        for (int j = 0; j < 8; ++j) {
          grp[rec.sc(j)] = static_cast<std::uint8_t>(k.sc[j]);
          grp[rec.m(j)] = static_cast<std::uint8_t>(k.m[j]);
        }
      }
    }
  }
}

void unpack_lane_k(const PackGeometry& g, const std::byte* group, int lane, std::byte* row) {
  check(g);
  const std::size_t sb_bytes = format_info(g.dtype).block_bytes;
  const std::int64_t nsb = g.cols / kSuperBlock,
                     chunks = static_cast<std::int64_t>(g.code_bytes / 4);
  const auto* grp = reinterpret_cast<const std::uint8_t*>(group);
  KBlock k;
  for (std::int64_t s = 0; s < nsb; ++s) {
    std::memset(k.code, 0, sizeof k.code);
    for (int j = 0; j < 8; ++j) {
      const std::int64_t b = s * 8 + j;
      const std::uint8_t* blk = grp + static_cast<std::size_t>(b) * kPackRows * g.code_bytes;
      for (std::int64_t c = 0; c < chunks; ++c)
        for (int t = 0; t < 4; ++t)
          add_chunk_byte(g.dtype, k.code + 32 * j, static_cast<int>(c), t,
                         blk[c * kPackChunk + lane * 4 + t]);
    }
    const Rec rec{g.scales_at(s * 8), g.dtype, static_cast<std::size_t>(lane)};
    std::memcpy(&k.d, grp + rec.d(), 2);
    if (g.dtype == DType::Q6_K) {
      for (int j = 0; j < 16; ++j) k.sc[j] = static_cast<std::int8_t>(grp[rec.sc(j)]);
    } else {
      std::memcpy(&k.dmin, grp + rec.dmin(), 2);
      for (int j = 0; j < 8; ++j) {
        k.sc[j] = grp[rec.sc(j)];
        k.m[j] = grp[rec.m(j)];
      }
    }
    build(g.dtype, k, row + static_cast<std::size_t>(s) * sb_bytes);
  }
}

void unpack_rows_k(const PackGeometry& g, const std::byte* src, std::byte* dst) {
  const std::size_t row_bytes = dtype_bytes(g.dtype, g.cols);
  for (std::int64_t r = 0; r < g.rows; ++r)
    unpack_lane_k(g, src + static_cast<std::size_t>(r / kPackRows) * g.group_bytes,
                  static_cast<int>(r % kPackRows), dst + static_cast<std::size_t>(r) * row_bytes);
}

}  // namespace kwaai::engine::cpu
