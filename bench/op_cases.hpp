// Op benchmark cases shared by bench/ops_bench.cpp (Google Benchmark) and
// `kwaainet bench --ops` (cli/cmd_bench_ops.cpp): the shapes, the bytes each case moves
// and the FLOPs it does, and one timed run on any backend.
//
// Timing: with profiling on, a backend reports per-op device time (GPU timestamps on
// Vulkan, wall time on the CPU); the time of one run is the sum over the ops it recorded.
// A backend whose profile comes back empty is timed by wall clock around run + flush.
// Header-only so the CLI (which builds from cli/ alone) and ops_bench share it without a
// library between them.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/backend.hpp"

namespace kwaai::bench {

using engine::DType;

struct OpCase {
  std::string name;           // "matvec q8_0 1x4096 · 14336x4096"
  double bytes = 0;           // bytes read + written by one run
  double flops = 0;           // floating-point (or integer multiply-add) ops of one run
  std::function<void()> run;  // records the op(s) on the backend
};

namespace detail {

inline std::vector<float> random_floats(std::int64_t n, std::uint64_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::vector<float> v(static_cast<std::size_t>(n));
  std::uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& e : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    e = lo + (hi - lo) * static_cast<float>(s >> 40) * 0x1p-24f;
  }
  return v;
}

inline engine::Tensor upload_f32(engine::Backend& be, const engine::Shape& shape,
                                 std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  const auto v = detail::random_floats(engine::shape_numel(shape), seed, lo, hi);
  auto t = be.alloc(DType::F32, shape);
  be.upload(t, std::as_bytes(std::span(v)));
  return t;
}

inline std::string dims(std::int64_t a, std::int64_t b) {
  return std::to_string(a) + "x" + std::to_string(b);
}

}  // namespace detail

inline OpCase make_matmul_case(engine::Backend& be, DType wt, std::int64_t M, std::int64_t N,
                               std::int64_t K, std::uint64_t seed = 1) {
  const auto wv = detail::random_floats(N * K, seed);
  std::vector<std::byte> wb(engine::dtype_bytes(wt, N * K));
  engine::from_f32(wt, wv.data(), wb.data(), N * K);
  auto w = be.alloc(wt, {N, K});
  be.upload(w, wb);
  auto x = detail::upload_f32(be, {M, K}, seed + 1);
  auto y = be.alloc(DType::F32, {M, N});
  OpCase c;
  c.name = std::string(M <= 8 ? "matvec " : "matmul ") + std::string(engine::dtype_name(wt)) + " " +
           detail::dims(M, K) + " · " + detail::dims(N, K);
  c.bytes = static_cast<double>(wb.size()) + 4.0 * static_cast<double>(M * K + M * N);
  c.flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  c.run = [&be, x, w, y] { be.matmul(x, w, y); };
  return c;
}

// Decode from memory, not cache: `copies` distinct [N, K] weights (together well over the
// last-level cache) run one after another, as a model's matrices are in a decode step.
inline OpCase make_matvec_stream_case(engine::Backend& be, DType wt, std::int64_t N, std::int64_t K,
                                      int copies) {
  const auto wv = detail::random_floats(N * K, 5);
  std::vector<std::byte> wb(engine::dtype_bytes(wt, N * K));
  engine::from_f32(wt, wv.data(), wb.data(), N * K);
  std::vector<engine::Tensor> ws;
  for (int i = 0; i < copies; ++i) {
    ws.push_back(be.alloc(wt, {N, K}));
    be.upload(ws.back(), wb);
  }
  auto x = detail::upload_f32(be, {1, K}, 6);
  auto y = be.alloc(DType::F32, {1, N});
  OpCase c;
  c.name = "matvec stream " + std::string(engine::dtype_name(wt)) + " " + std::to_string(copies) +
           " x " + detail::dims(N, K);
  c.bytes = static_cast<double>(wb.size()) * copies;
  c.flops = 2.0 * static_cast<double>(N) * static_cast<double>(K) * copies;
  c.run = [&be, x, ws, y] {
    for (const auto& w : ws) be.matmul(x, w, y);
  };
  return c;
}

inline OpCase make_copy_case(engine::Backend& be, std::size_t bytes) {
  const auto n = static_cast<std::int64_t>(bytes / 4);
  auto src = detail::upload_f32(be, {n}, 7);
  auto dst = be.alloc(DType::F32, {n});
  OpCase c;
  c.name = "copy " + std::to_string(bytes >> 20) + " MiB";
  c.bytes = 2.0 * static_cast<double>(n) * 4.0;
  c.run = [&be, src, dst] { be.copy(src, dst); };
  return c;
}

inline OpCase make_rms_norm_case(engine::Backend& be, std::int64_t rows, std::int64_t cols) {
  auto x = detail::upload_f32(be, {rows, cols}, 3);
  auto w = detail::upload_f32(be, {cols}, 4, 0.5f, 1.5f);
  auto y = be.alloc(DType::F32, {rows, cols});
  OpCase c;
  c.name = "rms_norm " + detail::dims(rows, cols);
  c.bytes = 4.0 * static_cast<double>(2 * rows * cols + cols);
  c.flops = 4.0 * static_cast<double>(rows * cols);
  c.run = [&be, x, w, y] { be.rms_norm(x, w, y, 1e-5f); };
  return c;
}

inline OpCase make_attention_decode_case(engine::Backend& be, std::int64_t Hq, std::int64_t Hkv,
                                         std::int64_t D, std::int64_t L) {
  auto q = detail::upload_f32(be, {1, 1, Hq, D}, 5);
  auto k = detail::upload_f32(be, {1, L, Hkv, D}, 6);
  auto v = detail::upload_f32(be, {1, L, Hkv, D}, 7);
  auto o = be.alloc(DType::F32, {1, 1, Hq, D});
  OpCase c;
  c.name = "attention decode Hq" + std::to_string(Hq) + " Hkv" + std::to_string(Hkv) + " D" +
           std::to_string(D) + " L" + std::to_string(L);
  c.bytes = 4.0 * static_cast<double>(2 * L * Hkv * D + 2 * Hq * D);
  c.flops = 4.0 * static_cast<double>(Hq * L * D);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  c.run = [&be, q, k, v, o, L, scale] { be.attention(q, k, v, o, L - 1, scale, 0, 0.0f); };
  return c;
}

inline OpCase make_silu_mul_case(engine::Backend& be, std::int64_t n) {
  auto g = detail::upload_f32(be, {n}, 8), u = detail::upload_f32(be, {n}, 9);
  auto o = be.alloc(DType::F32, {n});
  OpCase c;
  c.name = "silu_mul " + std::to_string(n);
  c.bytes = 12.0 * static_cast<double>(n);
  c.flops = 5.0 * static_cast<double>(n);
  c.run = [&be, g, u, o] { be.silu_mul(g, u, o); };
  return c;
}

inline OpCase make_blockwise8_case(engine::Backend& be, std::int64_t n) {
  auto x = detail::upload_f32(be, {n}, 10, -3.0f, 3.0f);
  std::vector<float> code(256);
  for (std::size_t i = 0; i < 256; ++i) code[i] = -1.0f + 2.0f * static_cast<float>(i) / 255.0f;
  auto cb = be.alloc(DType::F32, {256});
  be.upload(cb, std::as_bytes(std::span(code)));
  auto am = be.alloc(DType::F32, {(n + 4095) / 4096});
  auto codes = be.alloc(DType::U8, {n});
  OpCase c;
  c.name = "blockwise8_quantize " + std::to_string(n);
  c.bytes = 5.0 * static_cast<double>(n);
  c.run = [&be, x, cb, am, codes] { be.blockwise8_quantize(x, cb, am, codes); };
  return c;
}

inline double time_once(engine::Backend& be, const OpCase& c) {
  be.set_profiling(true);
  (void)be.take_profile();
  const auto t0 = std::chrono::steady_clock::now();
  c.run();
  be.flush();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto prof = be.take_profile();
  be.set_profiling(false);
  if (prof.empty()) return wall;
  double s = 0;
  for (const auto& p : prof) s += p.seconds;
  return s;
}

inline double time_median(engine::Backend& be, const OpCase& c, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) time_once(be, c);
  std::vector<double> t;
  for (int i = 0; i < std::max(1, reps); ++i) t.push_back(time_once(be, c));
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

inline double host_read_bandwidth(std::size_t bytes, int threads, int reps) {
  const std::size_t n = bytes / sizeof(std::uint64_t);
  std::vector<std::uint64_t> buf(n);
  for (std::size_t i = 0; i < n; ++i) buf[i] = i;  // touch every page
  threads = std::max(1, threads);
  std::vector<std::uint64_t> sums(static_cast<std::size_t>(threads));
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        const std::size_t b = n * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
        const std::size_t e =
            n * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
        std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        std::size_t i = b;
        for (; i + 4 <= e; i += 4) {
          s0 += buf[i];
          s1 += buf[i + 1];
          s2 += buf[i + 2];
          s3 += buf[i + 3];
        }
        for (; i < e; ++i) s0 += buf[i];
        sums[static_cast<std::size_t>(t)] = s0 + s1 + s2 + s3;
      });
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(std::uint64_t)) / s / 1e9);
  }
  // The sums feed a volatile sink so the loop cannot be optimised away.
  volatile std::uint64_t sink = 0;
  for (auto s : sums) sink = sink + s;
  return best;
}

}  // namespace kwaai::bench
