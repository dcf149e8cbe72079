#include "engine/llama/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace kwaai::engine::llama {

std::int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("argmax: empty logits");
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<std::int32_t>(best);
}

Sampler::Sampler(const SamplingOptions& opt) : opt_(opt) {
  if (!(opt.temperature >= 0) || !std::isfinite(opt.temperature))
    throw std::invalid_argument("sampling: temperature must be finite and >= 0, got " +
                                std::to_string(opt.temperature));
  if (opt.top_k < 0) throw std::invalid_argument("sampling: top_k must be >= 0");
  if (!(opt.top_p > 0 && opt.top_p <= 1))
    throw std::invalid_argument("sampling: top_p must be in (0, 1], got " +
                                std::to_string(opt.top_p));
  if (!(opt.repetition_penalty > 0))
    throw std::invalid_argument("sampling: repetition_penalty must be > 0");
  std::uint64_t z = opt.seed;
  for (auto& s : s_) {  // splitmix64 expands the seed into the four state words
    z += 0x9e3779b97f4a7c15ULL;
    std::uint64_t x = z;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    s = x ^ (x >> 31);
  }
}

std::uint64_t Sampler::next() {
  auto rotl = [](std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Sampler::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
  if (logits.empty()) throw std::invalid_argument("sample: empty logits");
  const auto n = static_cast<std::int64_t>(logits.size());
  work_.assign(logits.begin(), logits.end());
  if (opt_.repetition_penalty != 1.0f) {
    // Applied once per distinct id: a second visit would penalise an already-penalised value.
    std::vector<bool> seen(static_cast<std::size_t>(n), false);
    for (std::int32_t id : history) {
      if (id < 0 || id >= n || seen[static_cast<std::size_t>(id)]) continue;
      seen[static_cast<std::size_t>(id)] = true;
      float& l = work_[static_cast<std::size_t>(id)];
      l = l > 0 ? l / opt_.repetition_penalty : l * opt_.repetition_penalty;
    }
  }
  if (opt_.temperature == 0.0f) return argmax(work_);

  // Candidates sorted by logit (descending, ties by id), cut by top-k.
  order_.resize(static_cast<std::size_t>(n));
  std::iota(order_.begin(), order_.end(), 0);
  const std::int64_t k = opt_.top_k > 0 ? std::min(opt_.top_k, n) : n;
  auto better = [&](std::int32_t a, std::int32_t b) {
    const float la = work_[static_cast<std::size_t>(a)], lb = work_[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), better);
  order_.resize(static_cast<std::size_t>(k));

  // Softmax over the candidates at this temperature (max subtracted for stability).
  const double top = work_[static_cast<std::size_t>(order_[0])];
  std::vector<double> p(order_.size());
  double sum = 0;
  for (std::size_t i = 0; i < order_.size(); ++i) {
    p[i] = std::exp((work_[static_cast<std::size_t>(order_[i])] - top) / opt_.temperature);
    sum += p[i];
  }
  // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
  std::size_t keep = p.size();
  if (opt_.top_p < 1.0f) {
    double acc = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      acc += p[i] / sum;
      if (acc >= opt_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = 0;
  for (std::size_t i = 0; i < keep; ++i) kept += p[i];
  double r = uniform() * kept;
  for (std::size_t i = 0; i < keep; ++i) {
    r -= p[i];
    if (r < 0) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace kwaai::engine::llama
