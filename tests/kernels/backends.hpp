// Which backends the op suite runs on. "cpu" always; "vulkan" when the build defines
// KWAAI_TEST_VULKAN (tests/kernels/CMakeLists.txt), so one flag turns the whole suite on
// for the Vulkan backend.
#pragma once

#include <string>
#include <vector>

namespace kwaai::test {

std::vector<std::string> test_backend_specs();

}  // namespace kwaai::test
