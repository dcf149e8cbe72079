// Portable reference inner loops (also the fallback on CPUs without AVX2).
#include <cpuid.h>

#include <cmath>

#include "engine/cpu/kernels.hpp"

namespace kwaai::engine::cpu {

void quantize_act_q8(const float* x, BlockQ8Act* y, std::int64_t nblocks) {
  for (std::int64_t b = 0; b < nblocks; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      const int q = static_cast<int>(std::nearbyint(xb[j] * id));
      y[b].qs[j] = static_cast<std::int8_t>(q);
      sum += q;
    }
    y[b].d = d;
    y[b].s = d * static_cast<float>(sum);
  }
}

void group_act_q4(const BlockQ8Act* x, ActGroup4* g, std::int64_t nblocks) {
  constexpr int half = kQuantBlock / 2;
  for (std::int64_t gi = 0; gi < nblocks / 4; ++gi) {
    for (int k = 0; k < 4; ++k) {
      const BlockQ8Act& b = x[gi * 4 + k];
      for (int j = 0; j < half; ++j) {
        g[gi].lo[k * half + j] = b.qs[j];
        g[gi].hi[k * half + j] = b.qs[half + j];
      }
      g[gi].ds[k] = b.d;
      g[gi].ds[4 + k] = 2.0f * b.s;
    }
  }
}

namespace {

float dot_f32(const float* a, const float* b, std::int64_t n) {
  float s = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot_f16(const std::uint16_t* w, const float* x, std::int64_t n) {
  float s = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}

float dot_bf16(const std::uint16_t* w, const float* x, std::int64_t n) {
  float s = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8Act* x, std::int64_t nb) {
  float s = 0.0f;
  for (std::int64_t b = 0; b < nb; ++b) {
    int acc = 0;
    for (int j = 0; j < kQuantBlock; ++j) acc += w[b].qs[j] * x[b].qs[j];
    s += static_cast<float>(acc) * f16_to_f32(w[b].d) * x[b].d;
  }
  return s;
}

float dot_q4_0(const BlockQ4_0* w, const BlockQ8Act* x, const ActGroup4*, std::int64_t nb) {
  constexpr int half = kQuantBlock / 2;
  float s = 0.0f;
  for (std::int64_t b = 0; b < nb; ++b) {
    int acc = 0;
    for (int j = 0; j < half; ++j) {
      acc += ((w[b].qs[j] & 15) - 8) * x[b].qs[j];
      acc += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + half];
    }
    s += static_cast<float>(acc) * f16_to_f32(w[b].d) * x[b].d;
  }
  return s;
}

void f16_row(const std::uint16_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void bf16_row(const std::uint16_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void axpy_f32(float a, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float exp_sum_f32(float* x, float shift, std::int64_t n) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    s += x[i];
  }
  return static_cast<float>(s);
}

void silu_mul_f32(const float* g, const float* u, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable t{"scalar",
                             dot_f32,
                             dot_f16,
                             dot_bf16,
                             quantize_act_q8,
                             dot_q8_0,
                             dot_q4_0,
                             dot_q8_0_each_row<dot_q8_0>,
                             dot_q4_0_each_row<dot_q4_0>,
                             f16_row,
                             bf16_row,
                             axpy_f32,
                             exp_sum_f32,
                             silu_mul_f32};
  return t;
}

const KernelTable& best_kernels() {
  static const KernelTable& t = []() -> const KernelTable& {
    if (const auto* k = avx512_kernels()) return *k;
    if (const auto* k = avx2_kernels()) return *k;
    return scalar_kernels();
  }();
  return t;
}

bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

}  // namespace kwaai::engine::cpu
