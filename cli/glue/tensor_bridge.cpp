#include "cli/glue/tensor_bridge.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "p2p/hivemind/tensor.hpp"

namespace kwaai::glue {
namespace {

namespace hm = p2p::hivemind;
using engine::DType;

// hivemind's BlockwiseQuantization block size and bitsandbytes' 8-bit codebook length.
constexpr std::int64_t kBlock = 4096;
constexpr std::int64_t kCodes = 256;
constexpr std::size_t kHeader = 16;  // int64 A ‖ int64 C

// The wire is little-endian; memcpy of host values is only correct on a little-endian host.
static_assert(std::endian::native == std::endian::little, "tensor_bridge assumes a LE host");

std::int64_t blocks_for(std::int64_t n) {
  return (n + kBlock - 1) / kBlock;
}

hm::DType wire_dtype(std::string_view name, const char* op) {
  const auto d = hm::parse_dtype(name);
  if (!d || (*d != hm::DType::float32 && *d != hm::DType::bfloat16 && *d != hm::DType::float16))
    throw std::invalid_argument(std::string(op) + ": BLOCKWISE_8BIT dtype must be float32, " +
                                "bfloat16 or float16, got '" + std::string(name) + "'");
  return *d;
}

template <class T>
void put(std::string& buf, std::size_t at, const T* src, std::size_t count) {
  std::memcpy(buf.data() + at, src, count * sizeof(T));
}

template <class T>
T get(const std::string& buf, std::size_t at) {
  T v;
  std::memcpy(&v, buf.data() + at, sizeof(T));
  return v;
}

std::span<const std::byte> as_bytes_of(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

// Rounds a float32 value to the tensor's wire dtype and back (torch's round-to-nearest-even).
float round_to(hm::DType d, float v) {
  if (d == hm::DType::bfloat16) return hm::bfloat16_to_float(hm::float_to_bfloat16(v));
  if (d == hm::DType::float16) return hm::half_to_float(hm::float_to_half(v));
  return v;
}

}  // namespace

Blockwise8Bridge::Blockwise8Bridge(engine::Backend& backend) : backend_(&backend) {
  const std::vector<float>& code = hm::blockwise_codebook();
  if (static_cast<std::int64_t>(code.size()) != kCodes)
    throw std::logic_error("tensor_bridge: blockwise codebook has " + std::to_string(code.size()) +
                           " entries, expected 256");
  codebook_ = backend.alloc(DType::F32, {kCodes});
  backend.upload(codebook_, as_bytes_of(code));
}

hm::pb::Tensor Blockwise8Bridge::serialize(const engine::Tensor& x, std::string_view dtype_name,
                                           bool requires_grad) const {
  static constexpr const char* op = "serialize_blockwise8_on_device";
  const hm::DType wire = wire_dtype(dtype_name, op);
  if (!x.defined() || x.dtype() != DType::F32 || x.numel() <= 0)
    throw std::invalid_argument(std::string(op) + ": needs a non-empty f32 tensor, got " +
                                (x.defined() ? x.describe() : std::string("undefined")));
  for (std::int64_t d : x.shape())
    if (d > std::numeric_limits<std::uint32_t>::max())
      throw std::length_error(std::string(op) + ": dimension of " + x.describe() +
                              " exceeds Tensor.size's uint32");

  engine::Backend& be = *backend_;
  const std::int64_t n = x.numel(), blocks = blocks_for(n);
  const engine::Tensor absmax = be.alloc(DType::F32, {blocks});
  const engine::Tensor codes = be.alloc(DType::U8, {n});
  be.blockwise8_quantize(x.reshaped({n}), codebook_, absmax, codes);

  const auto un = static_cast<std::size_t>(n), ub = static_cast<std::size_t>(blocks);
  const std::size_t absmax_at = kHeader, code_at = absmax_at + 4 * ub,
                    idx_at = code_at + 4 * static_cast<std::size_t>(kCodes);
  std::string buf(idx_at + un, '\0');
  // The device writes straight into the message buffer: absmax and codes are the only
  // downloads.
  be.download(absmax, std::as_writable_bytes(std::span<char>(buf.data() + absmax_at, 4 * ub)));
  be.download(codes, std::as_writable_bytes(std::span<char>(buf.data() + idx_at, un)));
  const std::int64_t header[2] = {blocks, kCodes};
  put(buf, 0, header, 2);
  put(buf, code_at, hm::blockwise_codebook().data(), static_cast<std::size_t>(kCodes));

  hm::pb::Tensor out;
  out.set_buffer(std::move(buf));
  for (std::int64_t d : x.shape()) out.add_size(static_cast<std::uint32_t>(d));
  out.set_requires_grad(requires_grad);
  out.set_dtype(std::string(hm::dtype_name(wire)));
  out.set_compression(hm::pb::BLOCKWISE_8BIT);
  return out;
}

engine::Tensor Blockwise8Bridge::deserialize(const hm::pb::Tensor& t,
                                             const Blockwise8Limits& limits) const {
  static constexpr const char* op = "deserialize_blockwise8_to_device";
  if (t.compression() != hm::pb::BLOCKWISE_8BIT)
    throw std::invalid_argument(std::string(op) + ": compression " +
                                std::to_string(static_cast<int>(t.compression())) +
                                " is not BLOCKWISE_8BIT (5)");
  const hm::DType wire = wire_dtype(t.dtype(), op);
  if (static_cast<std::size_t>(t.size_size()) > limits.max_dims)
    throw std::length_error(std::string(op) + ": " + std::to_string(t.size_size()) +
                            " dimensions, limit " + std::to_string(limits.max_dims));
  engine::Shape shape;
  std::int64_t n = 1;
  for (std::uint32_t d : t.size()) {
    shape.push_back(d);
    if (d != 0 && n > limits.max_elements / static_cast<std::int64_t>(d))
      throw std::length_error(std::string(op) + ": shape " + engine::shape_str(shape) +
                              "... exceeds " + std::to_string(limits.max_elements) + " elements");
    n *= d;
  }
  if (n == 0)
    throw std::invalid_argument(std::string(op) + ": empty tensor " + engine::shape_str(shape) +
                                " has nothing to put on the device");

  // Layout checks, all before anything reaches the device.
  const std::string& buf = t.buffer();
  const std::int64_t blocks = blocks_for(n);
  const auto un = static_cast<std::size_t>(n), ub = static_cast<std::size_t>(blocks);
  if (buf.size() < kHeader)
    throw std::invalid_argument(std::string(op) + ": buffer of " + std::to_string(buf.size()) +
                                " bytes is shorter than the 16-byte header");
  const auto a = get<std::int64_t>(buf, 0), c = get<std::int64_t>(buf, 8);
  if (c != kCodes)
    throw std::invalid_argument(std::string(op) + ": codebook length C = " + std::to_string(c) +
                                ", expected 256");
  if (a != blocks)
    throw std::invalid_argument(std::string(op) + ": absmax length A = " + std::to_string(a) +
                                ", expected " + std::to_string(blocks) + " for " +
                                std::to_string(n) + " elements");
  const std::size_t absmax_at = kHeader, code_at = absmax_at + 4 * ub,
                    idx_at = code_at + 4 * static_cast<std::size_t>(kCodes);
  if (buf.size() != idx_at + un)
    throw std::invalid_argument(std::string(op) + ": buffer is " + std::to_string(buf.size()) +
                                " bytes, layout for " + std::to_string(n) + " elements needs " +
                                std::to_string(idx_at + un));
  std::vector<float> absmax(ub), code(static_cast<std::size_t>(kCodes));
  std::memcpy(absmax.data(), buf.data() + absmax_at, 4 * ub);
  std::memcpy(code.data(), buf.data() + code_at, code.size() * 4);
  for (std::size_t b = 0; b < ub; ++b)
    if (!std::isfinite(absmax[b]))
      throw std::invalid_argument(std::string(op) + ": absmax[" + std::to_string(b) +
                                  "] is not finite");
  for (std::size_t k = 0; k < code.size(); ++k)
    if (!std::isfinite(code[k]))
      throw std::invalid_argument(std::string(op) + ": codebook[" + std::to_string(k) +
                                  "] is not finite");

  engine::Backend& be = *backend_;
  const engine::Tensor codes = be.alloc(DType::U8, {n});
  be.upload(codes, std::as_bytes(std::span<const char>(buf.data() + idx_at, un)));
  const engine::Tensor out = be.alloc(DType::F32, {n});
  if (wire == hm::DType::float32) {
    const engine::Tensor dev_absmax = be.alloc(DType::F32, {blocks});
    const engine::Tensor dev_code = be.alloc(DType::F32, {kCodes});
    be.upload(dev_absmax, as_bytes_of(absmax));
    be.upload(dev_code, as_bytes_of(code));
    be.blockwise8_dequantize(codes, dev_absmax, dev_code, out);
  } else {
    // hivemind rounds float32(code * absmax) to the narrow dtype. Per block that is a
    // 256-entry table, so each block is dequantized with its own pre-rounded table and a
    // scale of 1 (exact: x * 1.0f == x), and the result equals hivemind's bit for bit.
    std::vector<float> tables(ub * code.size());
    for (std::size_t b = 0; b < ub; ++b)
      for (std::size_t k = 0; k < code.size(); ++k)
        tables[b * code.size() + k] = round_to(wire, code[k] * absmax[b]);
    const engine::Tensor dev_tables = be.alloc(DType::F32, {blocks * kCodes});
    const engine::Tensor one = be.alloc(DType::F32, {1});
    be.upload(dev_tables, as_bytes_of(tables));
    be.upload(one, as_bytes_of(std::vector<float>{1.0f}));
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
      be.blockwise8_dequantize(codes.slice_rows(lo, hi), one,
                               dev_tables.slice_rows(b * kCodes, (b + 1) * kCodes),
                               out.slice_rows(lo, hi));
    }
  }
  return out.reshaped(shape);
}

hm::pb::Tensor serialize_blockwise8_on_device(engine::Backend& backend, const engine::Tensor& x,
                                              std::string_view dtype_name, bool requires_grad) {
  return Blockwise8Bridge(backend).serialize(x, dtype_name, requires_grad);
}

engine::Tensor deserialize_blockwise8_to_device(engine::Backend& backend, const hm::pb::Tensor& t,
                                                const Blockwise8Limits& limits) {
  return Blockwise8Bridge(backend).deserialize(t, limits);
}

}  // namespace kwaai::glue
