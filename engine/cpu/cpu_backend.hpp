// The CPU backend: OpenBLAS for large f32 products, hand-vectorised kernels (AVX2 / AVX-512,
// chosen at run time) for quantized mat-vec and the element-wise ops, a small thread pool.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/core/backend.hpp"

namespace kwaai::engine {

// threads <= 0: one per physical core. kernels: a kernel table by name ("scalar", "avx2",
// "avx-vnni", "avx512-vnni"; engine/cpu/kernels.hpp), empty for the fastest this CPU runs;
// throws std::invalid_argument when the CPU cannot run the one asked for.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0, const std::string& kernels = "");

// What the CPU backend chooses on this machine (for `kwaainet devices` and bench headers): the
// kernel table it runs, every table this CPU can run (fastest first), and the core type
// OpenBLAS identified (it only multiplies f32-weight prefill products).
struct CpuBackendInfo {
  std::string kernels;
  std::vector<std::string> runnable;
  std::string openblas_core;
};
CpuBackendInfo cpu_backend_info();

// For a CPU backend: the int8 multiply-add peak of its kernel table on all its threads
// (multiply-adds per second, measured over ~`seconds`), the roofline of quantized prefill.
// 0 for any other backend.
double cpu_int8_peak(Backend& be, double seconds = 0.2);

}  // namespace kwaai::engine
