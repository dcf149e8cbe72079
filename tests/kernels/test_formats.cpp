// The weight-format table (engine/core/formats.hpp) is the one description of a format, so
// every reader must agree with it: names and GGUF ids round-trip, block geometry is what the
// dtype conversions use, --quant choices come from it, and every Vulkan weight decoder the
// table names exists in the embedded kernel table with that WTYPE (and no kernel decodes a
// WTYPE the table does not know).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "engine/core/formats.hpp"
#include "kernels/kernel_table.hpp"

namespace kwaai::engine {
namespace {

TEST(Formats, rows_follow_the_dtype_order_and_names_and_gguf_ids_round_trip) {
  std::set<std::string_view> names;
  std::set<std::int32_t> gguf;
  for (std::size_t i = 0; i < formats().size(); ++i) {
    const FormatInfo& f = formats()[i];
    SCOPED_TRACE(std::string(f.name));
    EXPECT_EQ(static_cast<std::size_t>(f.dtype), i);
    EXPECT_EQ(&format_info(f.dtype), &f);
    EXPECT_EQ(find_format(f.name), &f);
    EXPECT_EQ(dtype_name(f.dtype), f.name);
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate name";
    if (f.gguf_type >= 0) {
      EXPECT_TRUE(gguf.insert(f.gguf_type).second) << "duplicate GGUF id";
      EXPECT_EQ(find_gguf_format(static_cast<std::uint32_t>(f.gguf_type)), &f);
    }
    EXPECT_EQ(dtype_bytes(f.dtype, f.block_elems * 3), 3 * f.block_bytes);
    EXPECT_EQ(is_quantized(f.dtype), f.block_elems > 1);
    if (f.weight) EXPECT_TRUE(f.to_f32 && f.from_f32) << "a weight must convert to and from f32";
    if (f.load_quant) EXPECT_TRUE(f.weight);
    // Packed on the CPU: block-quantized formats, and the 16-bit floats.
    if (f.cpu_packed) EXPECT_TRUE(f.block_elems > 1 || f.block_bytes == 2);
  }
  EXPECT_EQ(find_format("q9_9"), nullptr);
  EXPECT_EQ(find_gguf_format(12345), nullptr);
  // Known GGUF ids (ggml.h): F32 0, F16 1, Q4_0 2, Q8_0 8, BF16 30.
  EXPECT_EQ(find_gguf_format(0)->dtype, DType::F32);
  EXPECT_EQ(find_gguf_format(1)->dtype, DType::F16);
  EXPECT_EQ(find_gguf_format(2)->dtype, DType::Q4_0);
  EXPECT_EQ(find_gguf_format(8)->dtype, DType::Q8_0);
  EXPECT_EQ(find_gguf_format(30)->dtype, DType::BF16);
  // ... and the K-quants: Q4_K 12, Q5_K 13, Q6_K 14, with ggml's block sizes.
  EXPECT_EQ(find_gguf_format(12)->dtype, DType::Q4_K);
  EXPECT_EQ(find_gguf_format(13)->dtype, DType::Q5_K);
  EXPECT_EQ(find_gguf_format(14)->dtype, DType::Q6_K);
  EXPECT_EQ(dtype_bytes(DType::Q4_K, 256), 144u);
  EXPECT_EQ(dtype_bytes(DType::Q5_K, 256), 176u);
  EXPECT_EQ(dtype_bytes(DType::Q6_K, 256), 210u);
}

TEST(Formats, quant_values_are_none_plus_the_load_time_targets) {
  EXPECT_EQ(quant_from_name("none"), kNoQuant);
  EXPECT_EQ(quant_name(kNoQuant), "none");
  std::string want = "none";
  for (const auto& f : formats()) {
    if (!f.load_quant) {
      EXPECT_THROW(quant_from_name(f.name), std::invalid_argument) << f.name;
      continue;
    }
    want += " | " + std::string(f.name);
    EXPECT_EQ(quant_from_name(f.name), Quant{f.dtype});
    EXPECT_EQ(quant_name(f.dtype), f.name);
  }
  EXPECT_EQ(quant_choices(), want);
  try {
    quant_from_name("q3");
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("q8_0"), std::string::npos) << "lists the choices";
  }
}

TEST(Formats, every_vulkan_weight_decoder_exists_with_the_tables_wtype) {
  std::set<std::string> known;
  for (const auto& f : formats()) {
    if (f.vk_wtype < 0) continue;
    const std::string define = "WTYPE=" + std::to_string(f.vk_wtype);
    for (const std::string prefix : {"matmul_mv_", "matmul_mv_sg_", "matmul_mv_gu_",
                                     "matmul_mv_gu_sg_", "matmul_mm_", "embedding_"}) {
      const std::string name = prefix + std::string(f.name);
      SCOPED_TRACE(name);
      known.insert(name);
      const kernels::KernelInfo& k = kernels::kernel(name);  // throws if missing
      EXPECT_NE(std::string(k.defines).find(define), std::string::npos) << k.defines;
    }
  }
  for (const auto& k : kernels::all_kernels()) {
    if (std::string(k.defines).find("WTYPE=") == std::string::npos) continue;
    EXPECT_TRUE(known.count(std::string(k.name)))
        << k.name << " decodes a weight format the format table does not list";
  }
}

}  // namespace
}  // namespace kwaai::engine
