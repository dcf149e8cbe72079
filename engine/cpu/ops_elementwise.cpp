// Row-wise and element-wise ops: rms_norm, layer_norm, rope, silu_mul, gelu, add, softmax,
// argmax.
// These are cheap next to matmul; they accumulate in double where a long reduction would
// otherwise lose precision (norms, softmax sums) and split rows across the pool.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "engine/cpu/cpu_ops.hpp"

namespace kwaai::engine::cpu {

namespace {
constexpr std::int64_t kElemGrain = 1 << 14;  // below this many elements one thread is faster
}

void rms_norm(const Ctx& c, const float* x, const float* w, float* y, std::int64_t rows,
              std::int64_t cols, float eps) {
  c.pool.parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      double ss = 0.0;
      for (std::int64_t i = 0; i < cols; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(cols) + eps));
      for (std::int64_t i = 0; i < cols; ++i) yr[i] = xr[i] * inv * w[i];
    }
  });
}

void layer_norm(const Ctx& c, const float* x, const float* w, const float* b, float* y,
                std::int64_t rows, std::int64_t cols, float eps) {
  c.pool.parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      // Two passes (mean, then the centred sum of squares) in double: one-pass E[x^2] - E[x]^2
      // cancels badly when the mean is large next to the spread.
      double sum = 0.0;
      for (std::int64_t i = 0; i < cols; ++i) sum += xr[i];
      const double mean = sum / static_cast<double>(cols);
      double ss = 0.0;
      for (std::int64_t i = 0; i < cols; ++i) {
        const double d = xr[i] - mean;
        ss += d * d;
      }
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps);
      for (std::int64_t i = 0; i < cols; ++i)
        yr[i] = static_cast<float>((xr[i] - mean) * inv) * w[i] + b[i];
    }
  });
}

// HF transformers' _compute_llama3_parameters: long wavelengths are slowed by `factor`,
// short ones kept, and the band between interpolated smoothly.
void rope_inv_freq(const RopeConfig& cfg, std::int64_t D, double* out) {
  const std::int64_t half = D / 2;
  const bool llama3 = cfg.llama3_factor > 1.0f;
  const double factor = cfg.llama3_factor, lo = cfg.low_freq_factor, hi = cfg.high_freq_factor;
  const double old_ctx = static_cast<double>(cfg.original_max_position);
  const double low_freq_wavelen = old_ctx / lo, high_freq_wavelen = old_ctx / hi;
  for (std::int64_t i = 0; i < half; ++i) {
    double f = std::pow(static_cast<double>(cfg.theta),
                        -static_cast<double>(2 * i) / static_cast<double>(D));
    if (llama3) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_freq_wavelen) {
        f = f / factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
        f = (1.0 - smooth) * f / factor + smooth * f;
      }
    }
    out[i] = f;
  }
}

void rope(const Ctx& c, float* x, const std::int32_t* pos, std::int64_t T, std::int64_t H,
          std::int64_t D, const RopeConfig& cfg) {
  const std::int64_t half = D / 2;
  std::vector<double> inv(static_cast<std::size_t>(half));
  rope_inv_freq(cfg, D, inv.data());
  c.pool.parallel_for(T, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<float> cs(static_cast<std::size_t>(half)), sn(static_cast<std::size_t>(half));
    for (std::int64_t t = t0; t < t1; ++t) {
      // Angles in double: positions reach 1e5+ and a float angle would lose whole radians.
      for (std::int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(pos[t]) * inv[static_cast<std::size_t>(i)];
        cs[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(a));
        sn[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(a));
      }
      for (std::int64_t h = 0; h < H; ++h) {
        float* v = x + (t * H + h) * D;
        for (std::int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cs[static_cast<std::size_t>(i)] - b * sn[static_cast<std::size_t>(i)];
          v[i + half] = b * cs[static_cast<std::size_t>(i)] + a * sn[static_cast<std::size_t>(i)];
        }
      }
    }
  });
}

void silu_mul(const Ctx& c, const float* g, const float* u, float* out, std::int64_t n) {
  c.pool.parallel_for(
      n,
      [&](std::int64_t i0, std::int64_t i1) {
        c.k.silu_mul_f32(g + i0, u + i0, out + i0, i1 - i0);
      },
      kElemGrain);
}

void gelu(const Ctx& c, const float* x, float* out, std::int64_t n, Gelu kind) {
  c.pool.parallel_for(
      n,
      [&](std::int64_t i0, std::int64_t i1) {
        if (kind == Gelu::erf) {
          for (std::int64_t i = i0; i < i1; ++i)
            out[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * std::numbers::sqrt2_v<float> * 0.5f));
        } else {
          for (std::int64_t i = i0; i < i1; ++i)
            out[i] = x[i] * 0.5f *
                     (1.0f + std::tanh(0.79788456f * x[i] * (1.0f + 0.044715f * x[i] * x[i])));
        }
      },
      kElemGrain);
}

void bias_add(const Ctx& c, float* y, const float* bias, std::int64_t rows, std::int64_t cols) {
  c.pool.parallel_for(
      rows,
      [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r)
          for (std::int64_t i = 0; i < cols; ++i) y[r * cols + i] += bias[i];
      },
      std::max<std::int64_t>(1, kElemGrain / std::max<std::int64_t>(1, cols)));
}

void add(const Ctx& c, const float* a, const float* b, float* out, std::int64_t n) {
  c.pool.parallel_for(
      n,
      [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
      },
      kElemGrain);
}

void softmax(const Ctx& c, const float* x, float* out, std::int64_t rows, std::int64_t cols) {
  c.pool.parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      float mx = -std::numeric_limits<float>::infinity();
      for (std::int64_t i = 0; i < cols; ++i) mx = std::max(mx, xr[i]);
      if (mx == -std::numeric_limits<float>::infinity())
        mx = 0.0f;  // all -inf: no NaN from inf-inf
      double sum = 0.0;
      for (std::int64_t i = 0; i < cols; ++i) {
        o[i] = std::exp(xr[i] - mx);
        sum += o[i];
      }
      const float inv = sum > 0.0 ? static_cast<float>(1.0 / sum) : 0.0f;
      for (std::int64_t i = 0; i < cols; ++i) o[i] *= inv;
    }
  });
}

void argmax(const Ctx& c, const float* x, std::int32_t* out, std::int64_t rows, std::int64_t cols) {
  c.pool.parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      std::int64_t best = 0;
      // NaN never wins (every comparison with it is false) unless the whole row is NaN.
      for (std::int64_t i = 1; i < cols; ++i)
        if (xr[i] > xr[best] || (std::isnan(xr[best]) && !std::isnan(xr[i]))) best = i;
      out[r] = static_cast<std::int32_t>(best);
    }
  });
}

}  // namespace kwaai::engine::cpu
