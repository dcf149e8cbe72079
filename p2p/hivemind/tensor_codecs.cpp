// The lossy hivemind codecs: MEANSTD_16BIT (per-row mean/std + fp16), UNIFORM_8BIT and
// QUANTILE_8BIT (int64 n ‖ float32 codebook[n] ‖ uint8 index per element) and BLOCKWISE_8BIT
// (bitsandbytes blockwise dynamic quantization). Decoders trust nothing in the buffer: every
// offset is checked against the declared shape first.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

#include "p2p/hivemind/tensor_internal.hpp"

namespace kwaai::p2p::hivemind::detail {
namespace {

constexpr float kFp32Eps = std::numeric_limits<float>::epsilon();
constexpr float kFp16Max = 65504.0f;
constexpr std::size_t kBlockSize = 4096;  // hivemind's BlockwiseQuantization blocksize

const std::uint8_t* bytes_of(const std::string& s) {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}

pb::Tensor with_buffer(const Bytes& buf, DType dtype) {
  pb::Tensor out;
  out.set_buffer(std::string(buf.begin(), buf.end()));
  out.set_dtype(std::string(dtype_name(dtype)));
  return out;
}

float clamp_fp16(float v) {
  return std::isnan(v) ? v : std::clamp(v, -kFp16Max, kFp16Max);
}

// torch 1.13's CPU float32 sum of a contiguous row (ATen SumKernel cascade_sum, AVX2 build):
// rows of >= 8 elements are summed as 8-lane vectors, four interleaved accumulators, with a
// 4-level cascade that folds partial sums every 2^level_power rows; shorter rows take the same
// cascade on scalars. Reproducing the order makes MEANSTD/UNIFORM stats bit-identical.
template <int L>
std::array<float, L> cascade_row_sum(const float* x, std::size_t count) {
  using V = std::array<float, L>;
  auto load = [&](std::size_t idx) {
    V v;
    for (int l = 0; l < L; ++l) v[l] = x[idx * L + l];
    return v;
  };
  auto add = [](V& a, const V& b) {
    for (int l = 0; l < L; ++l) a[l] += b[l];
  };
  constexpr int kIlp = 4, kLevels = 4;
  const std::size_t size = count / kIlp;
  int ceil_log2 = 0;
  while ((std::size_t{1} << ceil_log2) < size) ++ceil_log2;
  const int level_power = std::max(4, ceil_log2 / kLevels);
  const std::size_t level_step = std::size_t{1} << level_power, level_mask = level_step - 1;
  V acc[kLevels][kIlp] = {};
  std::size_t i = 0;
  while (i + level_step <= size) {
    for (std::size_t j = 0; j < level_step; ++j, ++i)
      for (int k = 0; k < kIlp; ++k) add(acc[0][k], load(i * kIlp + k));
    for (int j = 1; j < kLevels; ++j) {
      for (int k = 0; k < kIlp; ++k) {
        add(acc[j][k], acc[j - 1][k]);
        acc[j - 1][k] = V{};
      }
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < size; ++i)
    for (int k = 0; k < kIlp; ++k) add(acc[0][k], load(i * kIlp + k));
  for (int j = 1; j < kLevels; ++j)
    for (int k = 0; k < kIlp; ++k) add(acc[0][k], acc[j][k]);
  for (std::size_t idx = size * kIlp; idx < count; ++idx) add(acc[0][0], load(idx));
  for (int k = 1; k < kIlp; ++k) add(acc[0][0], acc[0][k]);
  return acc[0][0];
}

float torch_sum(const float* x, std::size_t n) {
  constexpr std::size_t kLanes = 8;
  if (n < kLanes) return cascade_row_sum<1>(x, n)[0];
  const std::size_t vectors = n / kLanes;
  const auto lanes = cascade_row_sum<kLanes>(x, vectors);
  float total = 0.0f;
  for (std::size_t k = vectors * kLanes; k < n; ++k) total += x[k];
  for (float l : lanes) total += l;
  return total;
}

// torch's vectorised last-dimension 2-norm (norm_kernel, p = 2): 8 fused multiply-add lanes,
// lanes folded in order, then a fused scalar tail.
float torch_norm2(const float* x, std::size_t n) {
  constexpr std::size_t kLanes = 8;
  std::array<float, kLanes> acc{};
  std::size_t d = 0;
  for (; d + kLanes <= n; d += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) acc[l] = std::fma(x[d + l], x[d + l], acc[l]);
  float b = acc[0];
  for (std::size_t l = 1; l < kLanes; ++l) b += acc[l];
  for (; d < n; ++d) b = std::fma(x[d], x[d], b);
  return std::sqrt(b);
}

// numpy's sort order for floats: NaN after everything (also keeps std::sort's comparator a
// strict weak ordering on hostile input).
bool nan_last(float a, float b) {
  return std::isnan(b) ? !std::isnan(a) : a < b;
}

// torch.bucketize(x, borders) with right=False: the number of borders strictly below x.
std::size_t bucketize(float x, const std::vector<float>& borders) {
  return static_cast<std::size_t>(std::lower_bound(borders.begin(), borders.end(), x) -
                                  borders.begin());
}

// average_buckets: float32 bin sums in element order divided by max(count, 1).
std::vector<float> average_buckets(const std::vector<float>& x,
                                   const std::vector<std::uint8_t>& q) {
  std::vector<float> sums(256, 0.0f);
  std::vector<std::int64_t> counts(256, 0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    sums[q[i]] += x[i];
    ++counts[q[i]];
  }
  for (int b = 0; b < 256; ++b) sums[b] /= static_cast<float>(std::max<std::int64_t>(counts[b], 1));
  return sums;
}

Bytes codebook_buffer(const std::vector<float>& codebook, const std::vector<std::uint8_t>& q) {
  Bytes buf;
  buf.reserve(8 + codebook.size() * 4 + q.size());
  append_le<std::int64_t>(buf, static_cast<std::int64_t>(codebook.size()));
  for (float c : codebook) append_le(buf, c);
  const std::size_t head = buf.size();
  buf.resize(head + q.size());
  if (!q.empty()) std::memcpy(buf.data() + head, q.data(), q.size());  // (insert trips GCC 12's
  return buf;                                                          // -Wstringop-overflow)
}

// numpy.quantile (method "linear") of sorted float32 data at float32 probabilities, with
// numpy's float32 arithmetic for the virtual index and the lerp.
std::vector<float> np_quantile_sorted(const std::vector<float>& sorted,
                                      const std::vector<float>& qs) {
  std::vector<float> out(qs.size());
  const std::size_t n = sorted.size();
  for (std::size_t i = 0; i < qs.size(); ++i) {
    float q = qs[i];
    float h = static_cast<float>(n) * q + (1.0f + q * -1.0f) - 1.0f;
    float lo_f = std::floor(h);
    float gamma = h - lo_f;
    auto clampi = [&](float v) {
      return static_cast<std::size_t>(std::clamp(v, 0.0f, static_cast<float>(n - 1)));
    };
    float a = sorted[clampi(lo_f)], b = sorted[clampi(lo_f + 1.0f)];
    float diff = b - a;
    out[i] = gamma >= 0.5f ? b - diff * (1.0f - gamma) : a + diff * gamma;
  }
  return out;
}

std::vector<float> linspace01(std::size_t n) {
  // numpy.linspace(0, 1, n, dtype=float32): step computed in float64, values cast at the end.
  std::vector<float> v(n);
  double step = 1.0 / static_cast<double>(n - 1);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<double>(i) * step);
  v[n - 1] = 1.0f;
  return v;
}

}  // namespace

Result<pb::Tensor> compress_meanstd(const HostTensor& t) {
  if (!dtype_is_float(t.dtype) || t.dtype == DType::bfloat16)
    return make_error(Errc::unsupported, "ScaledFloat16Compression does not support " +
                                             std::string(dtype_name(t.dtype)) + " tensors");
  if (t.shape.empty())
    return make_error(Errc::unsupported, "MEANSTD_16BIT needs at least one dimension");
  std::vector<float> x = to_float32(t);
  const std::size_t cols = static_cast<std::size_t>(t.shape.back());
  std::size_t rows = 1;
  for (std::size_t i = 0; i + 1 < t.shape.size(); ++i) rows *= static_cast<std::size_t>(t.shape[i]);
  std::vector<float> means(rows), stds(rows);
  Bytes buf;
  buf.reserve(x.size() * 2 + rows * 8);
  const float sqrt_cols = static_cast<float>(std::sqrt(static_cast<double>(cols)));
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * cols;
    float mean = torch_sum(row, cols) / static_cast<float>(cols);
    for (std::size_t c = 0; c < cols; ++c) row[c] -= mean;
    float std = torch_norm2(row, cols) / sqrt_cols;
    if (!(std >= kFp32Eps) && !std::isnan(std)) std = kFp32Eps;
    means[r] = mean;
    stds[r] = std;
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    float v = x[i] / stds[cols ? i / cols : 0];
    append_le(buf, float_to_half(clamp_fp16(v)));
  }
  for (float m : means) append_le(buf, m);
  for (float s : stds) append_le(buf, s);
  return with_buffer(buf, t.dtype);
}

Result<HostTensor> extract_meanstd(const pb::Tensor& t, DType dtype, std::size_t numel) {
  if (!dtype_is_float(dtype) || dtype == DType::bfloat16)
    return make_error(Errc::unsupported, "MEANSTD_16BIT tensor with dtype " + t.dtype());
  if (t.size_size() == 0)
    return make_error(Errc::malformed, "MEANSTD_16BIT tensor without dimensions");
  std::size_t stats = 1;
  for (int i = 0; i + 1 < t.size_size(); ++i) stats *= t.size(i);
  const std::string& b = t.buffer();
  // Like hivemind, the stats are located from the end of the buffer; the values must fit before.
  if (stats > b.size() / 8 || b.size() - stats * 8 < numel * 2)
    return make_error(Errc::malformed, "MEANSTD_16BIT buffer of " + std::to_string(b.size()) +
                                           " bytes is too short for its shape");
  const std::uint8_t* p = bytes_of(b);
  const std::uint8_t* means = p + b.size() - stats * 8;
  const std::uint8_t* stds = p + b.size() - stats * 4;
  const std::size_t cols = t.size(t.size_size() - 1);
  HostTensor out;
  out.dtype = dtype;
  for (std::size_t i = 0; i < numel; ++i) {
    std::size_t r = i / cols;
    float h = half_to_float(load_le<std::uint16_t>(p + 2 * i));
    float m = load_le<float>(means + 4 * r), s = load_le<float>(stds + 4 * r);
    if (dtype == DType::float64) {
      append_le(out.data, static_cast<double>(h) * s + m);
    } else if (dtype == DType::float16) {
      // in-place ops on a half tensor round after each op
      float prod = half_to_float(float_to_half(h * s));
      append_le(out.data, float_to_half(prod + m));
    } else {
      append_le(out.data, h * s + m);
    }
  }
  return out;
}

Result<pb::Tensor> compress_uniform8(const HostTensor& t) {
  if (!dtype_is_float(t.dtype))
    return make_error(Errc::unsupported, "UNIFORM_8BIT needs a floating-point tensor");
  std::vector<float> x = to_float32(t);
  const std::size_t n = x.size();
  std::vector<std::uint8_t> q(n);
  if (n > 0) {
    const float mean = torch_sum(x.data(), n) / static_cast<float>(n);
    std::vector<float> centered(n);
    for (std::size_t i = 0; i < n; ++i) centered[i] = x[i] - mean;
    const float std_unbiased = n > 1 ? torch_norm2(centered.data(), n) /
                                           static_cast<float>(std::sqrt(static_cast<double>(n - 1)))
                                     : 0.0f;
    const float scale = 6.0f * std_unbiased / 256.0f;
    const float inv_scale = scale > 0 ? 1.0f / scale : 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
      float r = std::nearbyint(centered[i] * inv_scale) + 128.0f;
      if (std::isnan(r)) r = 0.0f;  // NaN/inf input: any valid index; never cast NaN
      q[i] = static_cast<std::uint8_t>(std::clamp(r, 0.0f, 255.0f));
    }
  }
  return with_buffer(codebook_buffer(average_buckets(x, q), q), t.dtype);
}

Result<pb::Tensor> compress_quantile8(const HostTensor& t) {
  if (!dtype_is_float(t.dtype))
    return make_error(Errc::unsupported, "QUANTILE_8BIT needs a floating-point tensor");
  std::vector<float> x = to_float32(t);
  const std::size_t n = x.size();
  std::vector<std::uint8_t> q(n);
  if (n > 0) {
    // quantile-of-quantiles over chunks of >= 1e5 elements (hivemind's get_chunk_size).
    const std::size_t min_chunk = 100000;
    std::size_t chunk = min_chunk;
    if (n > min_chunk) {
      std::size_t leftover = n % min_chunk, chunks = n / min_chunk;
      chunk = min_chunk + (leftover + chunks - 1) / chunks;
      if (leftover == 0) chunk = min_chunk;
    }
    const std::vector<float> probs = linspace01(257);
    std::vector<float> partition;
    for (std::size_t start = 0; start < n; start += chunk) {
      std::vector<float> part(x.begin() + start, x.begin() + std::min(n, start + chunk));
      std::sort(part.begin(), part.end(), nan_last);
      auto qs = np_quantile_sorted(part, probs);
      partition.insert(partition.end(), qs.begin(), qs.end());
    }
    std::sort(partition.begin(), partition.end(), nan_last);
    auto all = np_quantile_sorted(partition, probs);
    std::vector<float> borders(all.begin() + 1, all.end() - 1);
    for (std::size_t i = 0; i < n; ++i)
      q[i] = static_cast<std::uint8_t>(std::min<std::size_t>(bucketize(x[i], borders), 255));
  }
  return with_buffer(codebook_buffer(average_buckets(x, q), q), t.dtype);
}

Result<HostTensor> extract_codebook8(const pb::Tensor& t, DType dtype, std::size_t numel) {
  if (!dtype_is_float(dtype))
    return make_error(Errc::unsupported, "8-bit quantized tensor with dtype " + t.dtype());
  const std::string& b = t.buffer();
  if (b.size() < 8) return make_error(Errc::malformed, "quantized buffer shorter than 8 bytes");
  const std::uint8_t* p = bytes_of(b);
  std::int64_t n_codes = load_le<std::int64_t>(p);
  if (n_codes < 0 || n_codes > 1 << 16 || static_cast<std::size_t>(n_codes) * 4 > b.size() - 8 ||
      b.size() - 8 - static_cast<std::size_t>(n_codes) * 4 != numel)
    return make_error(Errc::malformed, "quantized buffer layout does not match " +
                                           std::to_string(numel) + " elements");
  std::vector<float> codebook(static_cast<std::size_t>(n_codes));
  for (std::size_t i = 0; i < codebook.size(); ++i) codebook[i] = load_le<float>(p + 8 + 4 * i);
  const std::uint8_t* idx = p + 8 + codebook.size() * 4;
  std::vector<float> out(numel);
  for (std::size_t i = 0; i < numel; ++i) {
    if (idx[i] >= codebook.size())
      return make_error(Errc::malformed, "quantized index beyond the codebook");
    out[i] = codebook[idx[i]];
  }
  HostTensor r;
  r.dtype = dtype;
  r.data = from_float32(out, dtype);
  return r;
}

}  // namespace kwaai::p2p::hivemind::detail

namespace kwaai::p2p::hivemind {

namespace {

// torch.linspace(start, end, steps) for float32 as torch 1.13's AVX2 CPU kernel computes it: the
// output is produced in 8-lane vectors, two per loop iteration, each vector being
// `base + i * step` (not fused) from a fused `start + step * idx` (or `end - step * (steps-idx-1)`
// past the halfway point) base; the tail that does not fill two vectors uses the fused scalar
// formula. These rounding details decide the last bit of the bitsandbytes codebook.
std::vector<float> torch_linspace_f32(float start, float end, int steps) {
  std::vector<float> out(static_cast<std::size_t>(steps));
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  auto fused = [&](int idx) {
    return idx < halfway ? std::fma(step, static_cast<float>(idx), start)
                         : std::fma(-step, static_cast<float>(steps - idx - 1), end);
  };
  constexpr int kLanes = 8;
  const int vectorized = steps / (2 * kLanes) * (2 * kLanes);
  for (int idx = 0; idx < vectorized; idx += kLanes) {
    const float base = fused(idx);
    for (int i = 0; i < kLanes; ++i) {
      volatile float prod = static_cast<float>(i) * step;  // keep the compiler from fusing
      out[static_cast<std::size_t>(idx + i)] = base + prod;
    }
  }
  for (int idx = vectorized; idx < steps; ++idx) out[static_cast<std::size_t>(idx)] = fused(idx);
  return out;
}

}  // namespace

const std::vector<float>& blockwise_codebook() {
  static const std::vector<float> code = [] {
    // bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for
    // exponent i, 2^i evenly spaced mantissas (midpoints of a float32 linspace(0.1, 1)) scaled by
    // 10^(i-6), both signs; plus 0 and 1.0; sorted.
    std::vector<float> data;
    for (int i = 0; i < 7; ++i) {
      const std::vector<float> lin = torch_linspace_f32(0.1f, 1.0f, (1 << i) + 1);
      const float scale = static_cast<float>(std::pow(10.0, i - 6));
      for (std::size_t k = 0; k + 1 < lin.size(); ++k) {
        float mid = (lin[k] + lin[k + 1]) / 2.0f;
        data.push_back(scale * mid);
        data.push_back(-scale * mid);
      }
    }
    data.push_back(0.0f);
    data.push_back(1.0f);
    std::sort(data.begin(), data.end());
    data[0] = -1.0f;  // the CPU kernel's overwrite that hivemind then sends
    return data;
  }();
  return code;
}

namespace detail {

Result<pb::Tensor> compress_blockwise8(const HostTensor& t) {
  if (!dtype_is_float(t.dtype))
    return make_error(Errc::unsupported, "BLOCKWISE_8BIT needs a floating-point tensor");
  const std::vector<float> x = to_float32(t);
  const std::vector<float>& code = blockwise_codebook();
  const std::size_t n = x.size(), blocks = (n + kBlockSize - 1) / kBlockSize;
  std::vector<float> absmax(blocks, 0.0f);
  std::vector<std::uint8_t> q(n);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t lo = b * kBlockSize, hi = std::min(n, lo + kBlockSize);
    float m = 0.0f;
    for (std::size_t i = lo; i < hi; ++i) m = std::fmax(m, std::fabs(x[i]));
    absmax[b] = m;
    for (std::size_t i = lo; i < hi; ++i) {
      const float v = x[i] / m;
      // Largest index whose code is <= v, then step right only if strictly closer.
      std::size_t idx = static_cast<std::size_t>(std::max<std::ptrdiff_t>(
          std::upper_bound(code.begin(), code.end(), v) - code.begin() - 1, 0));
      if (idx < 255 && std::fabs(v - code[idx + 1]) < std::fabs(v - code[idx])) ++idx;
      q[i] = static_cast<std::uint8_t>(idx);
    }
  }
  Bytes buf;
  buf.reserve(16 + blocks * 4 + code.size() * 4 + n);
  append_le<std::int64_t>(buf, static_cast<std::int64_t>(blocks));
  append_le<std::int64_t>(buf, static_cast<std::int64_t>(code.size()));
  for (float a : absmax) append_le(buf, a);
  for (float c : code) append_le(buf, c);
  buf.insert(buf.end(), q.begin(), q.end());
  return with_buffer(buf, t.dtype);
}

Result<HostTensor> extract_blockwise8(const pb::Tensor& t, DType dtype, std::size_t numel) {
  if (!dtype_is_float(dtype))
    return make_error(Errc::unsupported, "BLOCKWISE_8BIT tensor with dtype " + t.dtype());
  const std::string& b = t.buffer();
  if (b.size() < 16) return make_error(Errc::malformed, "blockwise buffer shorter than 16 bytes");
  const std::uint8_t* p = bytes_of(b);
  const std::int64_t n_abs = load_le<std::int64_t>(p), n_code = load_le<std::int64_t>(p + 8);
  const std::size_t want_blocks = (numel + kBlockSize - 1) / kBlockSize;
  if (n_abs < 0 || n_code <= 0 || n_code > 1 << 16 ||
      static_cast<std::size_t>(n_abs) != want_blocks ||
      b.size() != 16 + static_cast<std::size_t>(n_abs + n_code) * 4 + numel)
    return make_error(Errc::malformed, "blockwise buffer layout does not match " +
                                           std::to_string(numel) + " elements");
  const std::uint8_t* absmax = p + 16;
  const std::uint8_t* code = absmax + n_abs * 4;
  const std::uint8_t* idx = code + n_code * 4;
  std::vector<float> out(numel);
  for (std::size_t i = 0; i < numel; ++i) {
    if (idx[i] >= n_code) return make_error(Errc::malformed, "blockwise index beyond codebook");
    out[i] = load_le<float>(code + 4 * idx[i]) * load_le<float>(absmax + 4 * (i / kBlockSize));
  }
  HostTensor r;
  r.dtype = dtype;
  r.data = from_float32(out, dtype);
  return r;
}

}  // namespace detail
}  // namespace kwaai::p2p::hivemind
