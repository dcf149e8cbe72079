#include "tests/kernels/backends.hpp"

#include "engine/cpu/kernels.hpp"

namespace kwaai::test {

std::vector<std::string> test_backend_specs() {
  std::vector<std::string> specs{"cpu"};
  // The CPU backend runs the fastest kernel table the machine has; the AVX2 table (the one
  // every x86-64 CPU of the last decade runs) is forced here too when it is not that one, so
  // the whole op suite covers it on an AVX-512 machine. (The scalar table is covered by
  // cpu_kernel_tests; it is too slow for the suite's Llama-sized cases.)
  if (engine::cpu::avx2_kernels() && &engine::cpu::best_kernels() != engine::cpu::avx2_kernels())
    specs.emplace_back("cpu:avx2");
#ifdef KWAAI_TEST_VULKAN
  specs.emplace_back("vulkan");
#endif
  return specs;
}

}  // namespace kwaai::test
