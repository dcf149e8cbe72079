// A plain float64 Llama forward for the stories260K tests, in which chosen weight matrices are
// replaced by their Q8_0 round trip and, optionally, the inputs of those matrices' products by
// theirs too. It is the "exact Q8_0" reference: it tells the format's own error (weights
// rounded to 8 bits with one f16 scale per 32) apart from anything the backends add.
//
// Q8_0 is written here from its definition in GGML/GGUF (quantize_row_q8_0_ref), independently
// of engine/core/dtype.cpp, so a quantizer bug there cannot hide in the reference:
//   d = amax(|x_block|) / 127, q = round-half-away(x * (1/d)) as int8, stored d = f16(d),
//   x' = q * f16(d).
// The forward itself is the textbook one (RMSNorm, rotate-half RoPE, GQA causal attention,
// SwiGLU), token by token with a float64 KV cache; feeding a prompt one token at a time is the
// same computation as a causal prefill.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/model/model_source.hpp"

namespace kwaai::engine::llama::test {

// The matrix kinds whose quantization can be switched on one at a time. Embedding is the
// table read by the token lookup, Head the same (tied) table used as the output projection.
enum class MatrixKind { Q, K, V, O, Gate, Up, Down, Embedding, Head, Count };
inline constexpr std::array<const char*, static_cast<std::size_t>(MatrixKind::Count)>
    kMatrixKindNames = {"wq", "wk", "wv", "wo", "gate", "up", "down", "embedding", "head"};

struct Q8Plan {
  std::array<bool, static_cast<std::size_t>(MatrixKind::Count)> weights{};  // all false: f32
  // Per kind: round each input row of that (quantized) matrix's product to Q8_0 as well, as
  // the CPU backend's 8-bit activation dot products do (with an f32 scale, not f16).
  std::array<bool, static_cast<std::size_t>(MatrixKind::Count)> activations{};

  static Q8Plan none() { return {}; }
  static Q8Plan all(bool acts = false) {
    Q8Plan p;
    p.weights.fill(true);
    p.activations.fill(acts);
    return p;
  }
  static Q8Plan only(MatrixKind k) {
    Q8Plan p;
    p.weights[static_cast<std::size_t>(k)] = true;
    return p;
  }
  bool on(MatrixKind k) const { return weights[static_cast<std::size_t>(k)]; }
  bool acts(MatrixKind k) const { return activations[static_cast<std::size_t>(k)]; }
};

// Rounds to the nearest IEEE half (ties to even), for the normal and subnormal range a Q8_0
// scale can take; overflow (amax > 127 * 65504) is not a case for model weights and throws.
inline double round_to_f16(float v) {
  if (v == 0.0f) return 0.0;
  const double a = std::fabs(static_cast<double>(v));
  if (a > 65504.0) throw std::overflow_error("round_to_f16: " + std::to_string(v));
  int e = std::ilogb(a);
  if (e < -14) e = -14;  // subnormal halves share the 2^-24 spacing
  const double ulp = std::ldexp(1.0, e - 10);
  const double r = std::nearbyint(a / ulp) * ulp;  // default rounding mode: ties to even
  return v < 0 ? -r : r;
}

// Q8_0 round trip of a row whose length is a multiple of 32, in place. `f16_scale` false keeps
// the scale in f32 (the CPU backend's activation blocks).
inline void q8_0_round_trip(double* x, std::size_t n, bool f16_scale = true) {
  if (n % 32 != 0) throw std::invalid_argument("q8_0_round_trip: n = " + std::to_string(n));
  for (std::size_t b = 0; b < n; b += 32) {
    float amax = 0.0f;
    float xf[32];
    for (std::size_t j = 0; j < 32; ++j) {
      xf[j] = static_cast<float>(x[b + j]);
      amax = std::max(amax, std::fabs(xf[j]));
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const double ds = f16_scale ? round_to_f16(d) : static_cast<double>(d);
    for (std::size_t j = 0; j < 32; ++j) x[b + j] = std::round(xf[j] * id) * ds;
  }
}

class Q8ReferenceModel {
 public:
  Q8ReferenceModel(const ModelSource& src, const Q8Plan& plan) : cfg_(src.config()), plan_(plan) {
    const bool tied = cfg_.tied_embeddings || !src.has(kLmHeadName);
    embed_ = load_matrix(src, kEmbedName, MatrixKind::Embedding);
    head_ = load_matrix(src, tied ? kEmbedName : kLmHeadName, MatrixKind::Head);
    final_norm_ = load_vector(src, kFinalNormName);
    for (std::int64_t i = 0; i < cfg_.layers; ++i) {
      Layer l;
      l.in_norm = load_vector(src, block_tensor_name(i, BlockTensor::InputNorm));
      l.post_norm = load_vector(src, block_tensor_name(i, BlockTensor::PostNorm));
      l.q = load_matrix(src, block_tensor_name(i, BlockTensor::Q), MatrixKind::Q);
      l.k = load_matrix(src, block_tensor_name(i, BlockTensor::K), MatrixKind::K);
      l.v = load_matrix(src, block_tensor_name(i, BlockTensor::V), MatrixKind::V);
      l.o = load_matrix(src, block_tensor_name(i, BlockTensor::O), MatrixKind::O);
      l.gate = load_matrix(src, block_tensor_name(i, BlockTensor::Gate), MatrixKind::Gate);
      l.up = load_matrix(src, block_tensor_name(i, BlockTensor::Up), MatrixKind::Up);
      l.down = load_matrix(src, block_tensor_name(i, BlockTensor::Down), MatrixKind::Down);
      layers_.push_back(std::move(l));
    }
    caches_.resize(layers_.size());
  }

  // Whether a matrix of this kind was really quantized: a row length that is not a multiple
  // of 32 (stories260K's down_proj, K = 172) cannot be, in GGML or in our engine.
  bool quantized(MatrixKind k) const { return quantized_[static_cast<std::size_t>(k)]; }

  void reset() {
    for (auto& c : caches_) c = {};
    pos_ = 0;
  }

  // Appends one token at the next position; returns the logits after it.
  std::vector<double> step(std::int32_t id) {
    if (id < 0 || id >= cfg_.vocab) throw std::out_of_range("token " + std::to_string(id));
    const auto h = static_cast<std::size_t>(cfg_.hidden);
    std::vector<double> x(embed_.w.begin() + id * h, embed_.w.begin() + (id + 1) * h);
    for (std::size_t i = 0; i < layers_.size(); ++i) layer(i, x);
    rms_norm(x, final_norm_);
    ++pos_;
    return matvec(head_, x);
  }

  std::vector<double> prefill(const std::vector<std::int32_t>& ids) {
    std::vector<double> logits;
    for (std::int32_t id : ids) logits = step(id);
    return logits;
  }

  // Greedy ids after `prompt` (the prompt's last logits give the first id).
  std::vector<std::int32_t> greedy(const std::vector<std::int32_t>& prompt, int n) {
    reset();
    std::vector<double> logits = prefill(prompt);
    std::vector<std::int32_t> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(argmax(logits));
      if (i + 1 < n) logits = step(out.back());
    }
    return out;
  }

  static std::int32_t argmax(const std::vector<double>& v) {
    return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
  }

 private:
  struct Matrix {
    std::size_t rows = 0, cols = 0;
    std::vector<double> w;  // row-major [rows, cols], already round-tripped when quantized
    bool q8 = false;
    bool q8_acts = false;
  };
  struct Layer {
    std::vector<double> in_norm, post_norm;
    Matrix q, k, v, o, gate, up, down;
  };
  struct Cache {
    std::vector<double> k, v;  // [pos, kv_dim] appended per token
  };

  static std::vector<double> load_f64(const ModelSource& src, const std::string& name) {
    const HostTensor t = src.load(name, DType::F32);
    std::vector<float> f(static_cast<std::size_t>(t.numel()));
    std::memcpy(f.data(), t.data.data(), f.size() * sizeof(float));
    return {f.begin(), f.end()};
  }
  static std::vector<double> load_vector(const ModelSource& src, const std::string& name) {
    return load_f64(src, name);
  }
  Matrix load_matrix(const ModelSource& src, const std::string& name, MatrixKind kind) {
    const TensorInfo info = src.info(name);
    Matrix m;
    m.rows = static_cast<std::size_t>(info.shape.at(0));
    m.cols = static_cast<std::size_t>(info.shape.at(1));
    m.w = load_f64(src, name);
    m.q8 = plan_.on(kind) && m.cols % 32 == 0;
    if (m.q8)
      for (std::size_t r = 0; r < m.rows; ++r) q8_0_round_trip(m.w.data() + r * m.cols, m.cols);
    m.q8_acts = m.q8 && plan_.acts(kind);
    quantized_[static_cast<std::size_t>(kind)] = m.q8;
    return m;
  }

  std::vector<double> matvec(const Matrix& m, const std::vector<double>& x) const {
    std::vector<double> in = x;
    if (m.q8_acts) q8_0_round_trip(in.data(), in.size(), /*f16_scale=*/false);
    std::vector<double> y(m.rows);
    for (std::size_t r = 0; r < m.rows; ++r) {
      double s = 0;
      for (std::size_t c = 0; c < m.cols; ++c) s += m.w[r * m.cols + c] * in[c];
      y[r] = s;
    }
    return y;
  }

  void rms_norm(std::vector<double>& x, const std::vector<double>& w) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + cfg_.rms_eps);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = x[i] * inv * w[i];
  }

  // Rotate-half RoPE on one head of `hd` values at position pos_.
  void rope(double* v, std::size_t hd) const {
    const std::size_t half = hd / 2;
    for (std::size_t i = 0; i < half; ++i) {
      const double freq = std::pow(static_cast<double>(cfg_.rope.theta),
                                   -2.0 * static_cast<double>(i) / static_cast<double>(hd));
      const double a = static_cast<double>(pos_) * freq, c = std::cos(a), s = std::sin(a);
      const double x0 = v[i], x1 = v[i + half];
      v[i] = x0 * c - x1 * s;
      v[i + half] = x1 * c + x0 * s;
    }
  }

  void layer(std::size_t li, std::vector<double>& x) {
    const Layer& l = layers_[li];
    Cache& cache = caches_[li];
    const auto heads = static_cast<std::size_t>(cfg_.heads);
    const auto kv_heads = static_cast<std::size_t>(cfg_.kv_heads);
    const std::size_t hd = l.q.rows / heads, kv_dim = kv_heads * hd;

    std::vector<double> n = x;
    rms_norm(n, l.in_norm);
    std::vector<double> q = matvec(l.q, n), k = matvec(l.k, n), v = matvec(l.v, n);
    for (std::size_t h = 0; h < heads; ++h) rope(q.data() + h * hd, hd);
    for (std::size_t h = 0; h < kv_heads; ++h) rope(k.data() + h * hd, hd);
    cache.k.insert(cache.k.end(), k.begin(), k.end());
    cache.v.insert(cache.v.end(), v.begin(), v.end());
    const std::size_t len = cache.k.size() / kv_dim;

    std::vector<double> att(heads * hd, 0.0), score(len);
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (std::size_t h = 0; h < heads; ++h) {
      const std::size_t g = h / (heads / kv_heads);
      double mx = -INFINITY;
      for (std::size_t p = 0; p < len; ++p) {
        double s = 0;
        for (std::size_t i = 0; i < hd; ++i) s += q[h * hd + i] * cache.k[p * kv_dim + g * hd + i];
        score[p] = s * scale;
        mx = std::max(mx, score[p]);
      }
      double sum = 0;
      for (std::size_t p = 0; p < len; ++p) sum += (score[p] = std::exp(score[p] - mx));
      for (std::size_t p = 0; p < len; ++p)
        for (std::size_t i = 0; i < hd; ++i)
          att[h * hd + i] += score[p] / sum * cache.v[p * kv_dim + g * hd + i];
    }
    const std::vector<double> o = matvec(l.o, att);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];

    n = x;
    rms_norm(n, l.post_norm);
    std::vector<double> gate = matvec(l.gate, n);
    const std::vector<double> up = matvec(l.up, n);
    for (std::size_t i = 0; i < gate.size(); ++i)
      gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    const std::vector<double> d = matvec(l.down, gate);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += d[i];
  }

  ModelConfig cfg_;
  Q8Plan plan_;
  std::array<bool, static_cast<std::size_t>(MatrixKind::Count)> quantized_{};
  Matrix embed_, head_;
  std::vector<double> final_norm_;
  std::vector<Layer> layers_;
  std::vector<Cache> caches_;
  std::int64_t pos_ = 0;
};

}  // namespace kwaai::engine::llama::test
