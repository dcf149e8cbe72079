#include "tests/runtime/vulkan_fixture.hpp"

#include <cstring>

namespace kwaai::runtime::test {

ContextOptions test_options() {
  ContextOptions o;
  o.enable_validation = true;
  o.enable_sync_validation = true;
  o.pipeline_cache_dir = std::nullopt;
  for (const auto& c : Context::enumerate())
    if (c.is_cpu_device) {
      o.device_index = c.index;
      break;
    }
  return o;
}

std::uint32_t fresh_seed() {
  return std::random_device{}();
}

void expect_no_validation_messages(const ValidationLog& log) {
  EXPECT_EQ(log.count(), 0u) << [&] {
    std::string all;
    for (const auto& m : log.messages()) all += "\n  " + m;
    return all;
  }();
}

void VulkanTest::SetUp() {
  ctx_.emplace(Context::create(test_options()));
  log_ = ctx_->validation_log();
}

void VulkanTest::TearDown() {
  ctx_.reset();  // device and instance teardown messages count too
  if (log_) expect_no_validation_messages(*log_);
}

Allocation VulkanTest::upload_floats(Stream& s, const std::vector<float>& v) {
  Allocation a = ctx().alloc_device(v.size() * sizeof(float));
  s.upload(a.ref(), std::as_bytes(std::span(v)));
  return a;
}

}  // namespace kwaai::runtime::test
