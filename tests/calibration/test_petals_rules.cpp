// Petals' _choose_num_blocks / get_block_size / get_server_throughput, checked against numbers
// worked out by hand from the Petals source (src/petals/server/{server,block_utils,
// throughput}.py); the arithmetic for each case is in its comment.
#include <gtest/gtest.h>

#include <stdexcept>

#include "calibration/petals_rules.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/model/config.hpp"

namespace kwaai::calibration {
namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;

BlockShape llama2_70b() {
  // hidden 8192, 64 heads, 8 kv heads, intermediate 28672, 80 layers.
  // params: q,o 8192*8192 each, k,v 8192*1024 each, 3 MLP 8192*28672, 2 norms 8192
  //       = 2*67108864 + 2*8388608 + 704643072 + 16384 = 855654400.
  return {8192, 64, 8, 80, 855654400};
}

TEST(CalibrationRules, BlockParamsOfLlama2_70bMatchTheEngineShapeHelper) {
  engine::ModelConfig c;
  c.hidden = 8192, c.intermediate = 28672, c.heads = 64, c.kv_heads = 8, c.head_dim = 128;
  EXPECT_EQ(engine::llama::block_params(c), 855654400);
}

TEST(CalibrationRules, Llama2_70bBf16On80GiBGpuHolds47Blocks) {
  const BlockBudget b = choose_num_blocks(llama2_70b(), engine::DType::F16, 80 * kGiB);
  // get_block_size: round(855654400 * 2 * 1.01) = 1728421888.
  EXPECT_EQ(b.block_bytes, 1728421888u);
  // GQA (64/8 = 8 groups > 1) -> 16384 cache tokens; 2 * 8192 * 16384 // 8 * 2 bytes = 64 MiB.
  EXPECT_EQ(b.attn_cache_tokens, 16384);
  EXPECT_EQ(b.cache_bytes_per_block, 67108864u);
  // autograd: 2 GiB / 14336 * 8192 = 1227133513.142857...
  EXPECT_NEAR(b.autograd_bytes, 1227133513.142857, 1e-3);
  // (85899345920 - 1227133513.14) / (1728421888 + 67108864) = 47.157 -> 47, below 80 layers.
  EXPECT_EQ(b.fit_blocks, 47);
  EXPECT_EQ(b.num_blocks, 47);
}

TEST(CalibrationRules, Stories260kIsCappedByItsFiveLayers) {
  // hidden 64, 8 heads / 4 kv heads (head_dim 8), intermediate 172, 5 layers:
  // params 2*64*64 + 2*64*32 + 3*64*172 + 2*64 = 45440.
  engine::ModelConfig c = engine::llama::known_config("stories260k");
  EXPECT_EQ(engine::llama::block_params(c), 45440);
  const BlockShape s{64, 8, 4, 5, 45440};
  const BlockBudget big = choose_num_blocks(s, engine::DType::F16, 24 * kGiB);
  EXPECT_EQ(big.block_bytes, 91789u);  // round(45440 * 2 * 1.01 = 91788.8)
  EXPECT_EQ(big.attn_cache_tokens, 16384);
  EXPECT_EQ(big.cache_bytes_per_block, 2097152u);  // 2*64*16384 // 2 * 2
  EXPECT_EQ(big.fit_blocks, 11768);
  EXPECT_EQ(big.num_blocks, 5);
  // 16 MiB: (16777216 - 9586980.57) / 2188941 = 3.28 -> 3.
  const BlockBudget small = choose_num_blocks(s, engine::DType::F16, 16ull << 20);
  EXPECT_NEAR(small.autograd_bytes, 9586980.571428, 1e-3);
  EXPECT_EQ(small.num_blocks, 3);
}

TEST(CalibrationRules, Llama2_7bWithoutGqaUses4096CacheTokens) {
  // MHA (32/32): 4096 tokens; cache 2*4096*4096 // 1 * 2 = 64 MiB.
  // params 4*4096^2 + 3*4096*11008 + 2*4096 = 202383360; block round(*2*1.01) = 408814387.
  const BlockShape s{4096, 32, 32, 32, 202383360};
  const BlockBudget b = choose_num_blocks(s, engine::DType::F16, 8 * kGiB);
  EXPECT_EQ(b.attn_cache_tokens, 4096);
  EXPECT_EQ(b.cache_bytes_per_block, 67108864u);
  EXPECT_EQ(b.block_bytes, 408814387u);
  // (8589934592 - 613566756.57) / 475923251 = 16.76 -> 16.
  EXPECT_EQ(b.num_blocks, 16);
  // 24 GiB fits 52 blocks; capped at the 32 layers.
  EXPECT_EQ(choose_num_blocks(s, engine::DType::F16, 24 * kGiB).num_blocks, 32);
}

TEST(CalibrationRules, QuantizedFormatsCountTheirScales) {
  EXPECT_DOUBLE_EQ(bytes_per_value(engine::DType::F16), 2.0);
  EXPECT_DOUBLE_EQ(bytes_per_value(engine::DType::F32), 4.0);
  EXPECT_DOUBLE_EQ(bytes_per_value(engine::DType::Q8_0), 34.0 / 32);
  EXPECT_DOUBLE_EQ(bytes_per_value(engine::DType::Q4_0), 18.0 / 32);
  // Llama-3-8B block (218112000 params): q8_0 -> round(218112000 * 1.0625 * 1.01) = 234061440;
  // on 8 GiB: (8589934592 - 613566756.57) / (234061440 + 67108864) = 26.48 -> 26.
  const BlockShape s{4096, 32, 8, 32, 218112000};
  const BlockBudget b = choose_num_blocks(s, engine::DType::Q8_0, 8 * kGiB);
  EXPECT_EQ(b.block_bytes, 234061440u);
  EXPECT_EQ(b.num_blocks, 26);
  EXPECT_EQ(block_size_bytes(218112000, engine::DType::Q4_0), 123914880u);  // *0.5625*1.01
}

TEST(CalibrationRules, BlockSizeRoundsHalvesToEvenLikePython) {
  // Python: round(25 * 2 * 1.01) == round(50.5) == 50, round(75 * 2 * 1.01) == 152.
  EXPECT_EQ(block_size_bytes(25, engine::DType::F16), 50u);
  EXPECT_EQ(block_size_bytes(75, engine::DType::F16), 152u);
  EXPECT_EQ(block_size_bytes(125, engine::DType::F16), 252u);
}

TEST(CalibrationRules, NotEvenOneBlockIsAnErrorNamingTheNumbers) {
  try {
    choose_num_blocks(llama2_70b(), engine::DType::F16, 2 * kGiB);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("at least one block"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1728421888"), std::string::npos) << e.what();
  }
  EXPECT_THROW(choose_num_blocks({8192, 64, 6, 80, 1}, engine::DType::F16, 80 * kGiB),
               std::invalid_argument);  // 64 % 6 != 0
  EXPECT_THROW(choose_num_blocks({8192, 64, 8, 0, 1}, engine::DType::F16, 80 * kGiB),
               std::invalid_argument);
  EXPECT_THROW(weight_format_from_quant("nf4"), std::invalid_argument);
}

TEST(CalibrationRules, NetworkRpsIsBitRateOverSixteenBitsPerHiddenValue) {
  // 100e6 / (4096 * 16) = 1525.87890625; 100e6 / (8192 * 16) = 762.939453125.
  EXPECT_DOUBLE_EQ(network_rps_from_bits_per_second(kPetalsDefaultNetworkBitsPerSecond, 4096),
                   1525.87890625);
  EXPECT_DOUBLE_EQ(network_rps_from_bits_per_second(100e6, 8192), 762.939453125);
  EXPECT_DOUBLE_EQ(network_rps_from_bits_per_second(1e9, 8192), 7629.39453125);
  EXPECT_THROW(network_rps_from_bits_per_second(0, 4096), std::invalid_argument);
}

TEST(CalibrationRules, ThroughputIsForwardOverAverageBlocksCappedByNetwork) {
  // 47 blocks: average used (47 + 1) / 2 = 24; 2400 / 24 = 100 < 762.9.
  EXPECT_DOUBLE_EQ(announced_throughput(2400, 762.939453125, 47), 100.0);
  // 1 block: average 1; compute 2400 > network 762.94 -> network.
  EXPECT_DOUBLE_EQ(announced_throughput(2400, 762.939453125, 1), 762.939453125);
  // Relay: network * 0.2 = 152.59 < 2400 / 2 (3 blocks -> average 2 -> 1200).
  EXPECT_DOUBLE_EQ(announced_throughput(2400, 762.939453125, 3, true), 762.939453125 * 0.2);
  // Even block counts give a fractional average: 4 blocks -> 2.5; 1000 / 2.5 = 400.
  EXPECT_DOUBLE_EQ(announced_throughput(1000, 1e9, 4), 400.0);
  EXPECT_THROW(announced_throughput(1000, 1000, 0), std::invalid_argument);
}

}  // namespace
}  // namespace kwaai::calibration
