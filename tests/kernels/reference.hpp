// Plain double-precision reference implementations of every Backend op, written for
// obviousness, not speed. Inputs are the exact values the backend sees (weights already
// decoded to float by engine::to_f32), so the only differences are the backend's own
// rounding and, for quantized matmul, its activation quantization.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/backend.hpp"

namespace kwaai::test::ref {

// y[m, n] = sum_k x[m, k] * w[n, k]; only the columns listed in `cols` (all if empty).
std::vector<double> matmul(const std::vector<float>& x, const std::vector<float>& w, std::int64_t M,
                           std::int64_t N, std::int64_t K, const std::vector<std::int64_t>& cols);
// torch.nn.LayerNorm over the last dimension (biased variance) and the exact (erf) GELU.
std::vector<double> layer_norm(const std::vector<float>& x, const std::vector<float>& w,
                               const std::vector<float>& b, std::int64_t rows, std::int64_t cols,
                               float eps);
std::vector<double> gelu(const std::vector<float>& x);
std::vector<double> gelu_tanh(const std::vector<float>& x);  // Bloom's bloom_gelu_forward
std::vector<double> rms_norm(const std::vector<float>& x, const std::vector<float>& w,
                             std::int64_t rows, std::int64_t cols, float eps);
std::vector<double> inv_freq(const engine::RopeConfig& cfg, std::int64_t D);
std::vector<double> rope(const std::vector<float>& x, const std::vector<std::int32_t>& pos,
                         std::int64_t T, std::int64_t H, std::int64_t D,
                         const engine::RopeConfig& cfg);
// Causal GQA attention; window > 0 keeps each query's last `window` rows.
std::vector<double> attention(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, std::int64_t B, std::int64_t T,
                              std::int64_t Hq, std::int64_t Hkv, std::int64_t D, std::int64_t L,
                              std::int64_t n_past, double scale, std::int64_t window = 0,
                              double alibi_max_bias = 0.0);
std::vector<double> silu_mul(const std::vector<float>& g, const std::vector<float>& u);
std::vector<double> softmax(const std::vector<float>& x, std::int64_t rows, std::int64_t cols);
std::vector<std::int32_t> argmax(const std::vector<float>& x, std::int64_t rows, std::int64_t cols);
// Blockwise 8-bit: absmax per 4096 values and nearest-code indices (ties to the lower).
void blockwise8_quantize(const std::vector<float>& x, const std::vector<float>& code,
                         std::vector<float>& absmax, std::vector<std::uint8_t>& codes);
void topk(const std::vector<float>& x, std::int64_t rows, std::int64_t cols, std::int64_t k,
          std::vector<std::int32_t>& idx, std::vector<float>& val);

}  // namespace kwaai::test::ref
