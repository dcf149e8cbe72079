#include "tests/kernels/backends.hpp"

namespace kwaai::test {

std::vector<std::string> test_backend_specs() {
  std::vector<std::string> specs{"cpu"};
#ifdef KWAAI_TEST_VULKAN
  specs.emplace_back("vulkan");
#endif
  return specs;
}

}  // namespace kwaai::test
