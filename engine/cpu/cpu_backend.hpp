// The CPU backend: OpenBLAS for large f32 products, hand-vectorised kernels (AVX2 / AVX-512,
// chosen at run time) for quantized mat-vec and the element-wise ops, a small thread pool.
#pragma once

#include <memory>

#include "engine/core/backend.hpp"

namespace kwaai::engine {

// threads <= 0: one per physical core.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace kwaai::engine
