// The Backend's composed defaults for its fused ops: each is its definition written in the
// unfused ops, so a backend without its own fused kernels is still correct.
#include "engine/core/backend.hpp"
#include <cmath>

#include <stdexcept>
#include <string>

#include "engine/core/op_checks.hpp"

namespace kwaai::engine {

AlibiSlopes::AlibiSlopes(std::int64_t heads, float max_bias) {
  if (heads <= 0 || !(max_bias > 0.0f)) return;
  n = 1;
  while (n * 2 <= heads) n *= 2;
  m0 = std::exp2(-max_bias / static_cast<float>(n));
  m1 = std::exp2(-max_bias / 2.0f / static_cast<float>(n));
  slope_.resize(static_cast<std::size_t>(heads));
  for (std::int64_t h = 0; h < heads; ++h)
    slope_[static_cast<std::size_t>(h)] = h < n ? std::pow(m0, static_cast<float>(h + 1))
                                                : std::pow(m1, static_cast<float>(2 * (h - n) + 1));
}

void Backend::matmul_add(const Tensor& x, const Tensor& w, const Tensor& y) {
  checks::matmul(x, w, y);
  const Tensor t = alloc(DType::F32, y.shape());
  matmul(x, w, t);
  add(y, t, y);
}

void Backend::matmul_many(const Tensor& x, std::span<const Tensor* const> ws,
                          std::span<const Tensor* const> ys) {
  if (ws.size() != ys.size())
    checks::fail("matmul_many", std::to_string(ws.size()) + " weights for " +
                                    std::to_string(ys.size()) + " outputs");
  for (std::size_t i = 0; i < ws.size(); ++i) matmul(x, *ws[i], *ys[i]);
}

void Backend::matmul_silu_mul(const Tensor& x, const Tensor& w_gate, const Tensor& w_up,
                              const Tensor& out) {
  checks::matmul(x, w_gate, out);
  checks::matmul(x, w_up, out);
  const Tensor g = alloc(DType::F32, out.shape());
  const Tensor u = alloc(DType::F32, out.shape());
  matmul(x, w_gate, g);
  matmul(x, w_up, u);
  silu_mul(g, u, out);
}

void Backend::rope_kv_write(const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor& positions, const RopeConfig& cfg, const Tensor& k_cache,
                            const Tensor& v_cache, std::int64_t pos) {
  const auto d = checks::rope_kv_write(q, k, v, positions, k_cache, v_cache, pos);
  rope(q.reshaped({d.B * d.T, d.Hq, d.D}), positions, cfg);
  rope(k.reshaped({d.B * d.T, d.Hkv, d.D}), positions, cfg);
  kv_write(k, k_cache, pos);
  kv_write(v, v_cache, pos);
}

}  // namespace kwaai::engine
