// Shared helpers of the Llama tests: the stories260K paths, reference tensors, error metrics
// and a backend factory that skips Vulkan cases only when no Vulkan backend can be made.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/core/backend.hpp"
#include "engine/model/safetensors.hpp"

namespace kwaai::engine::llama::test {

// Weight products one profiled op stands for, from its label or kind: the fused forms count
// their parts ("matmul_many q8_0 x3 [...]" is 3, "matmul_silu_mul ..." 2); non-matmul ops 0.
inline int products_of(const std::string& op) {
  if (op.rfind("matmul_silu_mul", 0) == 0) return 2;
  if (op.rfind("matmul_many", 0) == 0) {
    const auto x = op.find(" x");
    return x == std::string::npos ? 1 : std::stoi(op.substr(x + 2));
  }
  return op.rfind("matmul", 0) == 0 ? 1 : 0;
}

inline std::string stories_dir() {
  return std::string(KWAAI_SHARED_DIR) + "/models/stories260K";
}

class Reference {
 public:
  Reference() : file_(stories_dir() + "/reference.safetensors") {}
  std::vector<float> f32(const std::string& name) const {
    TensorView v = file_.view(name);
    EXPECT_EQ(v.dtype, DType::F32) << name;
    std::vector<float> out(static_cast<std::size_t>(v.numel()));
    std::memcpy(out.data(), v.data.data(), out.size() * sizeof(float));
    return out;
  }
  std::vector<std::int32_t> i32(const std::string& name) const {
    TensorView v = file_.view(name);
    EXPECT_EQ(v.dtype, DType::I32) << name;
    std::vector<std::int32_t> out(static_cast<std::size_t>(v.numel()));
    std::memcpy(out.data(), v.data.data(), out.size() * sizeof(std::int32_t));
    return out;
  }

 private:
  SafetensorsFile file_;
};

// ||a - b|| / ||b||
// rows × hidden values drawn from N(0, 1): hidden states to feed a block span.
inline std::vector<float> random_hidden(std::int64_t rows, std::int64_t hidden,
                                        std::mt19937_64& rng) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(rows * hidden));
  for (auto& x : v) x = n(rng);
  return v;
}

inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

// The relative-L2 bound the stories260K README sets for a backend.
inline double tolerance(const Backend& be) {
  return be.kind() == BackendKind::Cpu ? 1e-4 : 1e-3;
}

// A backend for a device spec; Vulkan cases skip (printing why) only when the Vulkan backend
// cannot be created on this machine. A CPU failure fails the test.
inline std::unique_ptr<Backend> backend_or_skip(const std::string& spec, std::string& why) {
  try {
    return make_backend(spec);
  } catch (const std::exception& e) {
    if (spec == "cpu") throw;
    why = e.what();
    return nullptr;
  }
}

#define KWAAI_BACKEND_OR_SKIP(var, spec)                                     \
  std::string var##_why;                                                     \
  auto var = ::kwaai::engine::llama::test::backend_or_skip(spec, var##_why); \
  if (!var) GTEST_SKIP() << "backend '" << (spec) << "' unavailable: " << var##_why

}  // namespace kwaai::engine::llama::test
