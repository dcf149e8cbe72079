// K-quant blocks (engine/core/kquants.hpp): hand-built blocks decode to the values ggml's rules
// give, the code accessors invert each other on every bit, and the quantizers stay within the
// error their code widths allow. (That the layouts are ggml's own is proven against llama.cpp
// itself by tests/engine/llama/llamacpp_kquant_check.sh.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/core/dtype.hpp"
#include "engine/core/kquants.hpp"

namespace kwaai::engine {
namespace {

TEST(KQuants, scale_min_packing_round_trips_every_six_bit_pair) {
  std::mt19937 gen(7);
  for (int round = 0; round < 200; ++round) {
    int sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<int>(gen() % 64);
      m[j] = static_cast<int>(gen() % 64);
    }
    std::uint8_t packed[12];
    k_pack_scale_min(sc, m, packed);
    for (int j = 0; j < 8; ++j) {
      int s = -1, mm = -1;
      k_scale_min(j, packed, s, mm);
      ASSERT_EQ(s, sc[j]);
      ASSERT_EQ(mm, m[j]);
    }
  }
  // ggml's get_scale_min_k4 for j >= 4 by hand: sub-block 5's scale is the low nibble of byte 9
  // with the top two bits of byte 1 above it; its minimum the high nibble of byte 9 with the top
  // two bits of byte 5.
  std::uint8_t q[12] = {};
  q[9] = 0xA3;  // low 3, high 10
  q[1] = 0x80;  // top bits 2
  q[5] = 0x40;  // top bits 1
  int s = 0, m = 0;
  k_scale_min(5, q, s, m);
  EXPECT_EQ(s, 3 | (2 << 4));
  EXPECT_EQ(m, 10 | (1 << 4));
}

TEST(KQuants, hand_built_q4_k_block_decodes_by_the_nibble_and_scale_rules) {
  BlockQ4_K b{};
  b.d = f32_to_f16(0.5f);
  b.dmin = f32_to_f16(0.25f);
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = j + 1;
    m[j] = 2 * j;
  }
  k_pack_scale_min(sc, m, b.scales);
  // Byte 32p + l: low nibble value 64p + l, high nibble value 64p + 32 + l.
  b.qs[0] = 0x3A;   // value 0 -> 10, value 32 -> 3
  b.qs[33] = 0xF1;  // value 65 -> 1, value 97 -> 15
  std::vector<float> y(256);
  dequantize_row_q4_k(&b, y.data(), 256);
  EXPECT_EQ(y[0], 0.5f * 1 * 10 - 0.25f * 0);
  EXPECT_EQ(y[32], 0.5f * 2 * 3 - 0.25f * 2);
  EXPECT_EQ(y[65], 0.5f * 3 * 1 - 0.25f * 4);
  EXPECT_EQ(y[97], 0.5f * 4 * 15 - 0.25f * 6);
  EXPECT_EQ(y[1], 0.0f);           // code 0 in sub-block 0 (minimum 0)
  EXPECT_EQ(y[255], -0.25f * 14);  // code 0 in sub-block 7
  EXPECT_EQ(q4_k_code(b, 97), 15);
}

TEST(KQuants, hand_built_q5_k_and_q6_k_blocks_take_their_high_bits_from_qh) {
  BlockQ5_K b5{};
  b5.d = f32_to_f16(1.0f);
  int sc[8] = {1, 1, 1, 1, 1, 1, 1, 1}, m[8] = {};
  k_pack_scale_min(sc, m, b5.scales);
  b5.qs[32 * 2 + 7] = 0x21;      // value 135 (low nibble 1), value 167 (high nibble 2)
  b5.qh[7] = 1u << 4 | 1u << 5;  // bits 2p, 2p + 1 for p = 2: values 135 and 167
  EXPECT_EQ(q5_k_code(b5, 135), 17);
  EXPECT_EQ(q5_k_code(b5, 167), 18);
  EXPECT_EQ(q5_k_code(b5, 7), 0);

  BlockQ6_K b6{};
  b6.d = f32_to_f16(0.125f);
  for (int j = 0; j < 16; ++j) b6.scales[j] = static_cast<std::int8_t>(j - 8);
  // Half 1, l = 5: ql[64 + 5] low -> value 133, high -> value 197; ql[64 + 37] low -> value
  // 165, high -> 229; qh[32 + 5] bits 0-1, 2-3, 4-5, 6-7 -> values 133, 165, 197, 229.
  b6.ql[69] = 0x4F;
  b6.ql[101] = 0x02;
  b6.qh[37] = 0b11'00'10'01;
  EXPECT_EQ(q6_k_code(b6, 133), 15 | (1 << 4));
  EXPECT_EQ(q6_k_code(b6, 165), 2 | (2 << 4));
  EXPECT_EQ(q6_k_code(b6, 197), 4 | (0 << 4));
  EXPECT_EQ(q6_k_code(b6, 229), 0 | (3 << 4));
  std::vector<float> y(256);
  dequantize_row_q6_k(&b6, y.data(), 256);
  EXPECT_EQ(y[133], 0.125f * static_cast<float>(133 / 16 - 8) * static_cast<float>(31 - 32));
  EXPECT_EQ(y[229], 0.125f * static_cast<float>(229 / 16 - 8) * static_cast<float>(48 - 32));
  EXPECT_EQ(y[0], 0.125f * -8.0f * -32.0f);  // code 0 is value -32
}

TEST(KQuants, code_setters_invert_the_getters_on_every_value) {
  std::mt19937 gen(11);
  for (int round = 0; round < 20; ++round) {
    int codes[256];
    BlockQ4_K b4{};
    BlockQ5_K b5{};
    BlockQ6_K b6{};
    for (int i = 0; i < 256; ++i) codes[i] = static_cast<int>(gen() % 64);
    for (int i = 0; i < 256; ++i) {
      q4_k_set_code(b4, i, codes[i] & 15);
      q5_k_set_code(b5, i, codes[i] & 31);
      q6_k_set_code(b6, i, codes[i]);
    }
    for (int i = 0; i < 256; ++i) {
      ASSERT_EQ(q4_k_code(b4, i), codes[i] & 15) << i;
      ASSERT_EQ(q5_k_code(b5, i), codes[i] & 31) << i;
      ASSERT_EQ(q6_k_code(b6, i), codes[i]) << i;
    }
  }
}

// Relative RMS error of quantize -> dequantize on Gaussian rows, against what the code widths
// allow (a uniform quantizer of step s has RMS error s / sqrt(12)): measured 0.074 (Q4_K), 0.037
// (Q5_K), 0.018 (Q6_K) against Q4_0's 0.086 and Q8_0's 0.005 on 65536 N(0, 1) values; the bounds
// leave a margin, and each format must beat the one with a bit less.
TEST(KQuants, quantizers_stay_within_their_code_widths_error) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const std::int64_t n = 256 * 64;
  std::vector<float> x(static_cast<std::size_t>(n)), back(x.size());
  for (auto& v : x) v = nd(gen);
  x[5] = 40.0f;  // an outlier in one sub-block must not spoil the others
  auto rel_rms = [&](DType t) {
    std::vector<std::byte> buf(dtype_bytes(t, n));
    from_f32(t, x.data(), buf.data(), n);
    to_f32(t, buf.data(), back.data(), n);
    double e = 0, s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      e += (back[i] - x[i]) * static_cast<double>(back[i] - x[i]);
      s += static_cast<double>(x[i]) * x[i];
    }
    return std::sqrt(e / s);
  };
  const double q4 = rel_rms(DType::Q4_K), q5 = rel_rms(DType::Q5_K), q6 = rel_rms(DType::Q6_K);
  const double q40 = rel_rms(DType::Q4_0), q80 = rel_rms(DType::Q8_0);
  EXPECT_LT(q4, 0.09);
  EXPECT_LT(q5, 0.045);
  EXPECT_LT(q6, 0.025);
  EXPECT_LT(q4, q40) << "Q4_K (scale and minimum per 32) should beat Q4_0";
  EXPECT_LT(q5, q4);
  EXPECT_LT(q6, q5);
  EXPECT_GT(q6, q80) << "and Q8_0 beats Q6_K";
}

TEST(KQuants, rows_must_be_whole_super_blocks_and_zero_rows_stay_zero) {
  std::vector<float> x(512, 0.0f), back(512, 1.0f);
  std::vector<std::byte> buf(dtype_bytes(DType::Q4_K, 512));
  EXPECT_THROW(from_f32(DType::Q4_K, x.data(), buf.data(), 300), std::invalid_argument);
  EXPECT_THROW(dtype_bytes(DType::Q6_K, 128), std::invalid_argument);
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    std::vector<std::byte> b(dtype_bytes(t, 512));
    from_f32(t, x.data(), b.data(), 512);
    to_f32(t, b.data(), back.data(), 512);
    for (float v : back) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace kwaai::engine
