// SPIR-V reflection on real modules from the table and on broken input.
#include "runtime/spirv_reflect.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "kernels/kernel_table.hpp"

namespace kwaai::runtime {
namespace {

TEST(SpirvReflect, ScaleKernelHasTwoBindingsSixteenPushBytesAndSpecLocalSize) {
  const auto& k = kernels::kernel("scale_f32");
  const SpirvInfo info = reflect_spirv(k.spirv);
  ASSERT_EQ(info.bindings.size(), 2u);
  EXPECT_EQ(info.bindings[0].set, 0u);
  EXPECT_EQ(info.bindings[0].binding, 0u);
  EXPECT_EQ(info.bindings[1].binding, 1u);
  EXPECT_EQ(info.push_constant_bytes, 16u);
  EXPECT_EQ(info.local_size[0], 64u);  // the constant_id default in scale.comp
  ASSERT_TRUE(info.local_size_spec_id[0].has_value());
  EXPECT_EQ(*info.local_size_spec_id[0], 0u);
  EXPECT_FALSE(info.local_size_spec_id[1].has_value());
  EXPECT_EQ(info.local_size[1], 1u);
}

TEST(SpirvReflect, RejectsBadMagicAndTruncatedModules) {
  const auto& k = kernels::kernel("scale_f32");
  std::vector<std::uint32_t> words(k.spirv.begin(), k.spirv.end());
  auto bad = words;
  bad[0] = 0xdeadbeef;
  EXPECT_THROW(reflect_spirv(bad), std::invalid_argument);
  EXPECT_THROW(reflect_spirv(std::span<const std::uint32_t>(words.data(), 3)),
               std::invalid_argument);
  // Cut in the middle of an instruction: the length field points past the end.
  for (std::size_t cut = 6; cut < words.size(); cut += 7) {
    std::vector<std::uint32_t> part(words.begin(), words.begin() + cut);
    try {
      (void)reflect_spirv(part);
    } catch (const std::invalid_argument&) {
    }  // either outcome is fine; it must not crash or read past the end
  }
  auto zero_len = words;
  zero_len[5] = 0;  // first instruction with word count 0
  EXPECT_THROW(reflect_spirv(zero_len), std::invalid_argument);
}

}  // namespace
}  // namespace kwaai::runtime
