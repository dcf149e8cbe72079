// Shared fixture for tests that need a Vulkan device: a validation-enabled Context on the
// first CPU device (lavapipe) or device 0, and an assertion at teardown that the validation
// layer reported nothing during the test, device destruction included.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "runtime/context.hpp"
#include "runtime/stream.hpp"

namespace kwaai::runtime::test {

// Options for tests: validation on, no on-disk pipeline cache unless a test sets one.
ContextOptions test_options();
// A fresh seed per call, for SCOPED_TRACE.
std::uint32_t fresh_seed();
// Fails the current test if `log` holds messages (printing them).
void expect_no_validation_messages(const ValidationLog& log);

class VulkanTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  Context& ctx() { return *ctx_; }

  // Uploads floats, returns the device allocation.
  Allocation upload_floats(Stream& s, const std::vector<float>& v);

  std::optional<Context> ctx_;
  std::shared_ptr<const ValidationLog> log_;
};

}  // namespace kwaai::runtime::test
