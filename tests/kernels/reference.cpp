#include "tests/kernels/reference.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

namespace kwaai::test::ref {

std::vector<double> matmul(const std::vector<float>& x, const std::vector<float>& w, std::int64_t M,
                           std::int64_t N, std::int64_t K, const std::vector<std::int64_t>& cols) {
  std::vector<double> y(static_cast<std::size_t>(M * N), 0.0);
  std::vector<std::int64_t> all;
  const auto* cs = &cols;
  if (cols.empty()) {
    all.resize(static_cast<std::size_t>(N));
    std::iota(all.begin(), all.end(), 0);
    cs = &all;
  }
  for (std::int64_t m = 0; m < M; ++m)
    for (std::int64_t n : *cs) {
      double s = 0.0;
      for (std::int64_t k = 0; k < K; ++k)
        s += static_cast<double>(x[static_cast<std::size_t>(m * K + k)]) *
             w[static_cast<std::size_t>(n * K + k)];
      y[static_cast<std::size_t>(m * N + n)] = s;
    }
  return y;
}

std::vector<double> layer_norm(const std::vector<float>& x, const std::vector<float>& w,
                               const std::vector<float>& b, std::int64_t rows, std::int64_t cols,
                               float eps) {
  std::vector<double> y(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto at = [&](std::int64_t i) { return static_cast<std::size_t>(r * cols + i); };
    double mean = 0.0, var = 0.0;
    for (std::int64_t i = 0; i < cols; ++i) mean += x[at(i)];
    mean /= static_cast<double>(cols);
    for (std::int64_t i = 0; i < cols; ++i) var += (x[at(i)] - mean) * (x[at(i)] - mean);
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(cols) + static_cast<double>(eps));
    for (std::int64_t i = 0; i < cols; ++i)
      y[at(i)] =
          (x[at(i)] - mean) * inv * w[static_cast<std::size_t>(i)] + b[static_cast<std::size_t>(i)];
  }
  return y;
}

std::vector<double> gelu_tanh(const std::vector<float>& x) {
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    y[i] = v * 0.5 * (1.0 + std::tanh(0.79788456 * v * (1.0 + 0.044715 * v * v)));
  }
  return y;
}

std::vector<double> gelu(const std::vector<float>& x) {
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    y[i] = 0.5 * x[i] * (1.0 + std::erf(static_cast<double>(x[i]) / std::sqrt(2.0)));
  return y;
}

std::vector<double> rms_norm(const std::vector<float>& x, const std::vector<float>& w,
                             std::int64_t rows, std::int64_t cols, float eps) {
  std::vector<double> y(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (std::int64_t i = 0; i < cols; ++i)
      ss += std::pow(x[static_cast<std::size_t>(r * cols + i)], 2.0);
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(cols) + static_cast<double>(eps));
    for (std::int64_t i = 0; i < cols; ++i)
      y[static_cast<std::size_t>(r * cols + i)] =
          x[static_cast<std::size_t>(r * cols + i)] * inv * w[static_cast<std::size_t>(i)];
  }
  return y;
}

// Written from the HF formula: wavelen = 2*pi / f; wavelen > old/low -> f / factor;
// wavelen < old/high -> f; otherwise a linear blend with
// smooth = (old / wavelen - low) / (high - low).
std::vector<double> inv_freq(const engine::RopeConfig& cfg, std::int64_t D) {
  std::vector<double> f(static_cast<std::size_t>(D / 2));
  for (std::int64_t i = 0; i < D / 2; ++i) {
    double base = 1.0 / std::pow(static_cast<double>(cfg.theta),
                                 static_cast<double>(2 * i) / static_cast<double>(D));
    if (cfg.llama3_factor > 1.0f) {
      const double old = static_cast<double>(cfg.original_max_position);
      const double wl = 2.0 * std::numbers::pi / base;
      const double low_wl = old / cfg.low_freq_factor, high_wl = old / cfg.high_freq_factor;
      if (wl > low_wl) {
        base /= cfg.llama3_factor;
      } else if (!(wl < high_wl)) {
        const double smooth =
            (old / wl - cfg.low_freq_factor) / (cfg.high_freq_factor - cfg.low_freq_factor);
        base = (1.0 - smooth) * base / cfg.llama3_factor + smooth * base;
      }
    }
    f[static_cast<std::size_t>(i)] = base;
  }
  return f;
}

std::vector<double> rope(const std::vector<float>& x, const std::vector<std::int32_t>& pos,
                         std::int64_t T, std::int64_t H, std::int64_t D,
                         const engine::RopeConfig& cfg) {
  const auto f = inv_freq(cfg, D);
  std::vector<double> y(x.size());
  const std::int64_t half = D / 2;
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < half; ++i) {
        const double a = pos[static_cast<std::size_t>(t)] * f[static_cast<std::size_t>(i)];
        const std::size_t base = static_cast<std::size_t>((t * H + h) * D);
        const double x0 = x[base + static_cast<std::size_t>(i)];
        const double x1 = x[base + static_cast<std::size_t>(i + half)];
        y[base + static_cast<std::size_t>(i)] = x0 * std::cos(a) - x1 * std::sin(a);
        y[base + static_cast<std::size_t>(i + half)] = x1 * std::cos(a) + x0 * std::sin(a);
      }
  return y;
}

std::vector<double> attention(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, std::int64_t B, std::int64_t T,
                              std::int64_t Hq, std::int64_t Hkv, std::int64_t D, std::int64_t L,
                              std::int64_t n_past, double scale, std::int64_t window,
                              double alibi_max_bias) {
  // ALiBi slopes as HF's build_alibi_tensor writes them (for max bias 8): powers of
  // base = 2^(-8 / p) for the largest power of two p <= Hq, then odd powers of
  // extra = 2^(-4 / p) for the remaining heads; other max biases scale the exponents.
  std::vector<double> slope(static_cast<std::size_t>(Hq), 0.0);
  if (alibi_max_bias > 0) {
    std::int64_t p2 = 1;
    while (p2 * 2 <= Hq) p2 *= 2;
    const double base = std::pow(2.0, -alibi_max_bias / static_cast<double>(p2));
    const double extra = std::pow(2.0, -alibi_max_bias / static_cast<double>(2 * p2));
    for (std::int64_t h = 0; h < Hq; ++h)
      slope[static_cast<std::size_t>(h)] =
          h < p2 ? std::pow(base, static_cast<double>(h + 1))
                 : std::pow(extra, static_cast<double>(2 * (h - p2) + 1));
  }
  std::vector<double> out(q.size());
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t h = 0; h < Hq; ++h) {
        const std::int64_t g = h / (Hq / Hkv);
        const std::int64_t n = n_past + t + 1;
        // Rows before the window get probability 0 (their score -inf).
        const std::int64_t lo = window > 0 ? std::max<std::int64_t>(0, n - window) : 0;
        std::vector<double> s(static_cast<std::size_t>(n));
        for (std::int64_t j = 0; j < n; ++j) {
          double d = 0;
          for (std::int64_t i = 0; i < D; ++i)
            d += static_cast<double>(q[static_cast<std::size_t>(((b * T + t) * Hq + h) * D + i)]) *
                 k[static_cast<std::size_t>(((b * L + j) * Hkv + g) * D + i)];
          // HF adds slope * j (absolute key position); the softmax is the same as for j - p.
          s[static_cast<std::size_t>(j)] =
              j < lo ? -INFINITY : d * scale + slope[static_cast<std::size_t>(h)] * j;
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (std::int64_t i = 0; i < D; ++i) {
          double acc = 0;
          for (std::int64_t j = 0; j < n; ++j)
            acc += s[static_cast<std::size_t>(j)] *
                   v[static_cast<std::size_t>(((b * L + j) * Hkv + g) * D + i)];
          out[static_cast<std::size_t>(((b * T + t) * Hq + h) * D + i)] = acc / sum;
        }
      }
  return out;
}

std::vector<double> silu_mul(const std::vector<float>& g, const std::vector<float>& u) {
  std::vector<double> y(g.size());
  for (std::size_t i = 0; i < g.size(); ++i)
    y[i] = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
  return y;
}

std::vector<double> softmax(const std::vector<float>& x, std::int64_t rows, std::int64_t cols) {
  std::vector<double> y(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto* xr = x.data() + r * cols;
    const double mx = *std::max_element(xr, xr + cols);
    double sum = 0;
    for (std::int64_t i = 0; i < cols; ++i) sum += std::exp(xr[i] - mx);
    for (std::int64_t i = 0; i < cols; ++i)
      y[static_cast<std::size_t>(r * cols + i)] = std::exp(xr[i] - mx) / sum;
  }
  return y;
}

std::vector<std::int32_t> argmax(const std::vector<float>& x, std::int64_t rows,
                                 std::int64_t cols) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t best = 0;
    for (std::int64_t i = 1; i < cols; ++i)
      if (x[static_cast<std::size_t>(r * cols + i)] > x[static_cast<std::size_t>(r * cols + best)])
        best = i;
    out[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(best);
  }
  return out;
}

void blockwise8_quantize(const std::vector<float>& x, const std::vector<float>& code,
                         std::vector<float>& absmax, std::vector<std::uint8_t>& codes) {
  const std::size_t n = x.size(), blocks = (n + 4095) / 4096;
  absmax.assign(blocks, 0.0f);
  codes.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    absmax[i / 4096] = std::max(absmax[i / 4096], std::fabs(x[i]));
  for (std::size_t i = 0; i < n; ++i) {
    const float a = absmax[i / 4096];
    const float v = x[i] / (a == 0.0f ? 1.0f : a);  // float32 division, as bitsandbytes does
    std::size_t best = 0;
    // Linear scan with float distances (bitsandbytes compares in float): strictly closer
    // wins, so ties stay at the lower index.
    for (std::size_t j = 1; j < 256; ++j)
      if (std::fabs(v - code[j]) < std::fabs(v - code[best])) best = j;
    codes[i] = static_cast<std::uint8_t>(best);
  }
}

void topk(const std::vector<float>& x, std::int64_t rows, std::int64_t cols, std::int64_t k,
          std::vector<std::int32_t>& idx, std::vector<float>& val) {
  idx.clear();
  val.clear();
  for (std::int64_t r = 0; r < rows; ++r) {
    std::vector<std::int32_t> order(static_cast<std::size_t>(cols));
    std::iota(order.begin(), order.end(), 0);
    const float* xr = x.data() + r * cols;
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return std::fabs(xr[a]) > std::fabs(xr[b]);
    });
    for (std::int64_t j = 0; j < k; ++j) {
      idx.push_back(order[static_cast<std::size_t>(j)]);
      val.push_back(xr[order[static_cast<std::size_t>(j)]]);
    }
  }
}

}  // namespace kwaai::test::ref
