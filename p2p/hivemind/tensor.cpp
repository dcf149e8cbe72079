#include <bit>
#include <cmath>
#include <limits>

#include "p2p/hivemind/tensor.hpp"
#include "p2p/hivemind/tensor_internal.hpp"

namespace kwaai::p2p::hivemind {

namespace {
struct DTypeInfo {
  DType t;
  std::string_view name;
  std::size_t size;
  bool is_float;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::float32, "float32", 4, true},   {DType::float16, "float16", 2, true},
    {DType::bfloat16, "bfloat16", 2, true}, {DType::float64, "float64", 8, true},
    {DType::int64, "int64", 8, false},      {DType::int32, "int32", 4, false},
    {DType::int16, "int16", 2, false},      {DType::int8, "int8", 1, false},
    {DType::uint8, "uint8", 1, false},      {DType::boolean, "bool", 1, false},
};
const DTypeInfo& info(DType t) {
  return kDTypes[static_cast<int>(t)];
}
}  // namespace

std::string_view dtype_name(DType t) {
  return info(t).name;
}
std::size_t dtype_size(DType t) {
  return info(t).size;
}
bool dtype_is_float(DType t) {
  return info(t).is_float;
}
std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& d : kDTypes)
    if (d.name == name) return d.t;
  return std::nullopt;
}

std::size_t HostTensor::numel() const {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

HostTensor HostTensor::from_floats(std::vector<std::int64_t> shape, const std::vector<float>& v) {
  HostTensor t;
  t.dtype = DType::float32;
  t.shape = std::move(shape);
  t.data.resize(v.size() * 4);
  if (!v.empty()) std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

std::vector<float> HostTensor::to_floats() const {
  return detail::to_float32(*this);
}

// IEEE binary64 -> binary16 with round-to-nearest-even, overflow to inf, NaN kept quiet.
std::uint16_t float_to_half(double x) {
  std::uint64_t b = std::bit_cast<std::uint64_t>(x);
  std::uint16_t sign = static_cast<std::uint16_t>((b >> 48) & 0x8000);
  double a = std::fabs(x);
  if (std::isnan(x)) return sign | 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00;  // rounds to inf
  if (a < std::ldexp(1.0, -25)) {
    // below half the smallest subnormal: rounds to zero (exactly half rounds to even = 0)
    return sign;
  }
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  // Quantum (ulp) of the half format at this magnitude: normal halves have 10 fraction bits.
  int exp_unbiased = e - 1;  // a in [2^exp, 2^(exp+1))
  int q = std::max(exp_unbiased, -14) - 10;
  double scaled = std::ldexp(a, -q);  // exact: fewer than 53 bits
  double r = std::nearbyint(scaled);  // default rounding mode: nearest even
  std::uint64_t mant = static_cast<std::uint64_t>(r);
  // mant is the value in units of 2^q; rebuild the bit pattern.
  if (q == -24) {  // subnormal range (or rounded up into the first normal)
    return sign | static_cast<std::uint16_t>(mant);  // 0x400 carries into the exponent
  }
  int biased = exp_unbiased + 15;
  if (mant == 2048) {  // rounding overflowed the mantissa
    mant = 1024;
    ++biased;
  }
  if (biased >= 31) return sign | 0x7c00;
  return sign | static_cast<std::uint16_t>(biased << 10) | static_cast<std::uint16_t>(mant - 1024);
}

float half_to_float(std::uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  float v;
  if (exp == 0)
    v = std::ldexp(static_cast<float>(frac), -24);
  else if (exp == 31)
    v = frac ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else
    v = std::ldexp(static_cast<float>(frac | 0x400), exp - 25);
  return sign ? -v : v;
}

std::uint16_t float_to_bfloat16(float x) {
  std::uint32_t b = std::bit_cast<std::uint32_t>(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((b >> 16) | 0x40);
  b += 0x7fff + ((b >> 16) & 1);  // round to nearest even, as torch's c10::BFloat16 does
  return static_cast<std::uint16_t>(b >> 16);
}

float bfloat16_to_float(std::uint16_t v) {
  return std::bit_cast<float>(std::uint32_t{v} << 16);
}

namespace detail {

std::vector<float> to_float32(const HostTensor& t) {
  std::size_t n = t.numel();
  std::vector<float> out(n);
  const std::uint8_t* p = t.data.data();
  for (std::size_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case DType::float32:
        out[i] = load_le<float>(p + 4 * i);
        break;
      case DType::float64:
        out[i] = static_cast<float>(load_le<double>(p + 8 * i));
        break;
      case DType::float16:
        out[i] = half_to_float(load_le<std::uint16_t>(p + 2 * i));
        break;
      case DType::bfloat16:
        out[i] = bfloat16_to_float(load_le<std::uint16_t>(p + 2 * i));
        break;
      case DType::int64:
        out[i] = static_cast<float>(load_le<std::int64_t>(p + 8 * i));
        break;
      case DType::int32:
        out[i] = static_cast<float>(load_le<std::int32_t>(p + 4 * i));
        break;
      case DType::int16:
        out[i] = static_cast<float>(load_le<std::int16_t>(p + 2 * i));
        break;
      case DType::int8:
        out[i] = static_cast<float>(static_cast<std::int8_t>(p[i]));
        break;
      case DType::uint8:
        out[i] = static_cast<float>(p[i]);
        break;
      case DType::boolean:
        out[i] = p[i] ? 1.0f : 0.0f;
        break;
    }
  }
  return out;
}

Bytes from_float32(const std::vector<float>& v, DType dtype) {
  Bytes out;
  out.reserve(v.size() * dtype_size(dtype));
  for (float x : v) {
    switch (dtype) {
      case DType::float32:
        append_le(out, x);
        break;
      case DType::float64:
        append_le(out, static_cast<double>(x));
        break;
      case DType::float16:
        append_le(out, float_to_half(x));
        break;
      case DType::bfloat16:
        append_le(out, float_to_bfloat16(x));
        break;
      default:
        append_le(out, x);
        break;  // callers only pass float dtypes
    }
  }
  return out;
}

Result<std::size_t> checked_numel(const pb::Tensor& t, const DeserializeLimits& limits) {
  if (static_cast<std::size_t>(t.size_size()) > limits.max_dims)
    return make_error(Errc::too_large, "tensor has " + std::to_string(t.size_size()) + " dims");
  std::size_t n = 1;
  for (std::uint32_t d : t.size()) {
    if (d != 0 && n > limits.max_elements / d)
      return make_error(Errc::too_large, "tensor shape exceeds the element limit");
    n *= d;
  }
  if (n > limits.max_elements)
    return make_error(Errc::too_large, "tensor shape exceeds the element limit");
  return n;
}

}  // namespace detail

namespace {

Result<pb::Tensor> compress_none(const HostTensor& t, const SerializeOptions& opt) {
  pb::Tensor out;
  out.set_dtype(std::string(dtype_name(t.dtype)));
  if (t.dtype == DType::bfloat16 && opt.legacy_bfloat16) {
    Bytes wide;
    wide.reserve(t.numel() * 4);
    for (float f : detail::to_float32(t)) detail::append_le(wide, f);
    out.set_buffer(std::string(wide.begin(), wide.end()));
  } else {
    out.set_buffer(std::string(t.data.begin(), t.data.end()));
  }
  return out;
}

Result<pb::Tensor> compress_float16(const HostTensor& t) {
  if (!dtype_is_float(t.dtype) || t.dtype == DType::bfloat16)
    return make_error(Errc::unsupported, "Float16Compression does not support " +
                                             std::string(dtype_name(t.dtype)) + " tensors");
  Bytes buf;
  buf.reserve(t.numel() * 2);
  for (float f : detail::to_float32(t)) {
    float c = std::isnan(f) ? f : std::clamp(f, -65504.0f, 65504.0f);
    detail::append_le(buf, float_to_half(c));
  }
  pb::Tensor out;
  out.set_buffer(std::string(buf.begin(), buf.end()));
  out.set_dtype(std::string(dtype_name(t.dtype)));
  return out;
}

Result<HostTensor> extract_none(const pb::Tensor& t, DType dtype, std::size_t numel) {
  HostTensor out;
  out.dtype = dtype;
  const std::string& b = t.buffer();
  if (dtype == DType::bfloat16 && numel > 0 && b.size() == numel * 4) {
    // Legacy form: float32 bytes, cast to bf16 on receipt.
    for (std::size_t i = 0; i < numel; ++i)
      detail::append_le(out.data, float_to_bfloat16(detail::load_le<float>(
                                      reinterpret_cast<const std::uint8_t*>(b.data()) + 4 * i)));
    return out;
  }
  if (b.size() != numel * dtype_size(dtype))
    return make_error(Errc::malformed, "NONE tensor buffer of " + std::to_string(b.size()) +
                                           " bytes does not match " + std::to_string(numel) +
                                           " x " + std::string(dtype_name(dtype)));
  out.data.assign(b.begin(), b.end());
  return out;
}

Result<HostTensor> extract_float16(const pb::Tensor& t, DType dtype, std::size_t numel) {
  if (!dtype_is_float(dtype) || dtype == DType::bfloat16)
    return make_error(Errc::unsupported, "FLOAT16 tensor with dtype " + t.dtype());
  const std::string& b = t.buffer();
  if (b.size() != numel * 2)
    return make_error(Errc::malformed, "FLOAT16 buffer of " + std::to_string(b.size()) +
                                           " bytes for " + std::to_string(numel) + " elements");
  HostTensor out;
  out.dtype = dtype;
  const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
  if (dtype == DType::float16) {
    out.data.assign(b.begin(), b.end());
  } else {
    for (std::size_t i = 0; i < numel; ++i) {
      float f = half_to_float(detail::load_le<std::uint16_t>(p + 2 * i));
      if (dtype == DType::float64)
        detail::append_le(out.data, static_cast<double>(f));
      else
        detail::append_le(out.data, f);
    }
  }
  return out;
}

}  // namespace

Result<pb::Tensor> serialize_tensor(const HostTensor& t, CompressionType compression,
                                    const SerializeOptions& opt) {
  if (t.data.size() != t.numel() * dtype_size(t.dtype))
    return make_error(Errc::malformed, "HostTensor data size does not match its shape");
  Result<pb::Tensor> r = make_error(Errc::unsupported, "unknown compression type");
  switch (compression) {
    case pb::NONE:
      r = compress_none(t, opt);
      break;
    case pb::FLOAT16:
      r = compress_float16(t);
      break;
    case pb::MEANSTD_16BIT:
      r = detail::compress_meanstd(t);
      break;
    case pb::UNIFORM_8BIT:
      r = detail::compress_uniform8(t);
      break;
    case pb::QUANTILE_8BIT:
      r = detail::compress_quantile8(t);
      break;
    case pb::BLOCKWISE_8BIT:
      r = detail::compress_blockwise8(t);
      break;
    default:
      break;
  }
  if (!r) return r;
  r->set_compression(compression);
  r->clear_size();
  for (auto d : t.shape) r->add_size(static_cast<std::uint32_t>(d));
  r->set_requires_grad(t.requires_grad);
  return r;
}

Result<HostTensor> deserialize_tensor(const pb::Tensor& t, const DeserializeLimits& limits) {
  auto dtype = parse_dtype(t.dtype());
  if (!dtype) return make_error(Errc::unsupported, "unknown tensor dtype '" + t.dtype() + "'");
  auto numel = detail::checked_numel(t, limits);
  if (!numel) return numel.error();
  Result<HostTensor> r =
      make_error(Errc::unsupported, "unknown compression type " + std::to_string(t.compression()));
  switch (t.compression()) {
    case pb::NONE:
      r = extract_none(t, *dtype, *numel);
      break;
    case pb::FLOAT16:
      r = extract_float16(t, *dtype, *numel);
      break;
    case pb::MEANSTD_16BIT:
      r = detail::extract_meanstd(t, *dtype, *numel);
      break;
    case pb::UNIFORM_8BIT:
    case pb::QUANTILE_8BIT:
      r = detail::extract_codebook8(t, *dtype, *numel);
      break;
    case pb::BLOCKWISE_8BIT:
      r = detail::extract_blockwise8(t, *dtype, *numel);
      break;
    default:
      break;
  }
  if (!r) return r;
  r->shape.assign(t.size().begin(), t.size().end());
  r->requires_grad = t.requires_grad();
  return r;
}

}  // namespace kwaai::p2p::hivemind
