// The host/shader contract of every embedded kernel, asserted from the modules themselves:
// the storage-buffer bindings (set 0, numbered 0..n-1) and the push-constant block size that
// kernels.cmake declares must be what the SPIR-V declares.
#include "kernels/kernel_table.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "runtime/spirv_reflect.hpp"

namespace kwaai {
namespace {

TEST(KernelTable, EveryModuleMatchesItsDeclaredBindingsAndPushConstants) {
  const auto table = kernels::all_kernels();
  ASSERT_FALSE(table.empty());
  for (const auto& k : table) {
    SCOPED_TRACE(std::string(k.name));
    ASSERT_GE(k.spirv.size(), 5u);
    EXPECT_EQ(k.spirv[0], 0x07230203u);
    const runtime::SpirvInfo info = runtime::reflect_spirv(k.spirv);
    std::uint32_t n = 0;
    for (const auto& b : info.bindings) {
      EXPECT_EQ(b.set, 0u) << "only descriptor set 0 is bound";
      EXPECT_EQ(b.binding, n) << "bindings must be 0..n-1";
      ++n;
    }
    EXPECT_EQ(n, k.binding_count) << "BINDINGS in kernels.cmake";
    EXPECT_EQ(info.push_constant_bytes, k.push_constant_bytes) << "PUSH in kernels.cmake";
    EXPECT_LE(k.push_constant_bytes, 128u) << "128 bytes is the guaranteed minimum limit";
    constexpr std::uint32_t kKnown = kernels::kFp16 | kernels::kStorage16 | kernels::kStorage8 |
                                     kernels::kSubgroup | kernels::kSubgroupShuffle |
                                     kernels::kInt8 | kernels::kInt16 | kernels::kInt64;
    EXPECT_EQ(k.features & ~kKnown, 0u);
  }
}

TEST(KernelTable, NamesAreSortedUniqueAndFoundByLookup) {
  const auto table = kernels::all_kernels();
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_TRUE(seen.insert(table[i].name).second) << table[i].name;
    if (i) {
      EXPECT_LT(table[i - 1].name, table[i].name);
    }
    EXPECT_EQ(&kernels::kernel(table[i].name), &table[i]);
  }
}

TEST(KernelTable, UnknownNameThrowsOutOfRangeNamingIt) {
  try {
    (void)kernels::kernel("no_such_kernel");
    FAIL() << "expected std::out_of_range";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_kernel"), std::string::npos);
  }
}

TEST(KernelTable, VariantsDeclareTheirFeatures) {
  EXPECT_EQ(kernels::kernel("scale_f32").features, 0u);
  EXPECT_EQ(kernels::kernel("scale_f16_f32").features, std::uint32_t(kernels::kStorage16));
  EXPECT_EQ(kernels::kernel("reduce_sum_f32_subgroup").features, std::uint32_t(kernels::kSubgroup));
  EXPECT_EQ(kernels::feature_name(kernels::kStorage8), "storage8");
}

}  // namespace
}  // namespace kwaai
