// Shared helpers of the op suite: one backend per spec per process, seeded random inputs
// (a fresh seed per case, printed through SCOPED_TRACE), poisoned outputs, host<->device
// copies and tolerance checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/core/backend.hpp"
#include "tests/kernels/backends.hpp"

namespace kwaai::test {

// The backend for a spec, created once per test process (Vulkan start-up is not free).
engine::Backend& backend_for(const std::string& spec);

// A fresh seed per call (std::random_device), so reruns explore new inputs; tests print it.
std::uint64_t fresh_seed();

// splitmix64-based generator: fast enough to fill 58M-element weight matrices.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() >> 40) * 0x1p-24f;
  }
  std::vector<float> vec(std::int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& e : v) e = uniform(lo, hi);
    return v;
  }

 private:
  std::uint64_t s_;
};

template <class T>
engine::Tensor upload(engine::Backend& be, engine::DType dt, const engine::Shape& shape,
                      const std::vector<T>& host) {
  auto t = be.alloc(dt, shape);
  be.upload(t, std::as_bytes(std::span(host)));
  return t;
}

// Floats converted to `dt` on the host (engine::from_f32) and uploaded; `decoded`, when
// given, receives what the backend now holds, decoded back to float (engine::to_f32).
engine::Tensor upload_as(engine::Backend& be, engine::DType dt, const engine::Shape& shape,
                         const std::vector<float>& values, std::vector<float>* decoded = nullptr);

// An output tensor whose bytes are all 0xFF first (NaN as f32, -1 as i32, 255 as u8), so an
// element the op forgets to write fails the comparison.
engine::Tensor poisoned(engine::Backend& be, engine::DType dt, const engine::Shape& shape);

template <class T>
std::vector<T> download(engine::Backend& be, const engine::Tensor& t) {
  std::vector<T> v(t.nbytes() / sizeof(T));
  be.download(t, std::as_writable_bytes(std::span(v)));
  return v;
}

// |got - want| <= atol + rtol * |want| for every element, reporting the first few misses.
::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                     double atol, double rtol);

// Runs `fn` and checks it throws std::invalid_argument mentioning `op`.
template <class Fn>
::testing::AssertionResult throws_invalid(const std::string& op, Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find(op) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks '" << op << "': " << e.what();
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "wrong exception type: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception from " << op;
}

// Parameterised over backend specs; names like ".../cpu", ".../vulkan".
class OpTest : public ::testing::TestWithParam<std::string> {
 protected:
  engine::Backend& be() { return backend_for(GetParam()); }
};

std::string spec_name(const ::testing::TestParamInfo<std::string>& info);

#define KWAAI_INSTANTIATE_OPS(Suite)                                                 \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                          \
                           ::testing::ValuesIn(::kwaai::test::test_backend_specs()), \
                           ::kwaai::test::spec_name)

// Declares `seed` and `rng` and puts the seed into every failure message of the scope.
#define KWAAI_SEEDED_RNG()                                \
  const std::uint64_t seed = ::kwaai::test::fresh_seed(); \
  SCOPED_TRACE("seed " + std::to_string(seed));           \
  ::kwaai::test::Rng rng(seed)

}  // namespace kwaai::test
