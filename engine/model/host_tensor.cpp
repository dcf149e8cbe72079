#include "engine/model/host_tensor.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/core/formats.hpp"

namespace kwaai::engine {

HostTensor convert_tensor(const TensorView& v, DType target, int threads) {
  HostTensor out;
  out.name = v.name;
  out.dtype = target;
  out.shape = v.shape;
  const std::int64_t n = v.numel();
  if (v.data.size() != dtype_bytes(v.dtype, n)) {
    throw std::invalid_argument("convert '" + v.name + "': " + std::to_string(v.data.size()) +
                                " bytes for " + std::string(dtype_name(v.dtype)) +
                                shape_str(v.shape));
  }
  if (v.dtype == target) {
    out.data.assign(v.data.begin(), v.data.end());
    return out;
  }
  auto is_float_like = [](DType t) { return format_info(t).to_f32 != nullptr; };
  if (!is_float_like(v.dtype) || !is_float_like(target)) {
    throw std::invalid_argument("convert '" + v.name + "': cannot convert " +
                                std::string(dtype_name(v.dtype)) + " to " +
                                std::string(dtype_name(target)));
  }
  // Rows along the last dimension: quantized blocks never straddle rows, as in GGUF.
  const std::int64_t row = v.shape.empty() ? 1 : v.shape.back();
  if (row <= 0 || n == 0) {
    out.data.clear();
    return out;
  }
  if (const std::int64_t be =
          std::max(format_info(target).block_elems, format_info(v.dtype).block_elems);
      row % be != 0) {
    throw std::invalid_argument("convert '" + v.name + "' " + std::string(dtype_name(v.dtype)) +
                                shape_str(v.shape) + " to " + std::string(dtype_name(target)) +
                                ": the last dimension must be a multiple of " + std::to_string(be));
  }
  const std::int64_t rows = n / row;
  const std::size_t in_row = dtype_bytes(v.dtype, row);
  const std::size_t out_row = dtype_bytes(target, row);
  out.data.resize(out_row * static_cast<std::size_t>(rows));
  // Row by row through an f32 row (never the whole tensor in f32), split over the hardware
  // threads when the tensor is large: loading a 70B-class span is conversion-bound otherwise
  // (one thread encodes Q4_0 at ~1/3 of a disk's read rate, the K-quants slower still).
  auto convert = [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> tmp(static_cast<std::size_t>(row));
    for (std::int64_t r = r0; r < r1; ++r) {
      to_f32(v.dtype, v.data.data() + r * in_row, tmp.data(), row);
      from_f32(target, tmp.data(), out.data.data() + r * out_row, row);
    }
  };
  constexpr std::int64_t kParallelMinValues = 1 << 20;
  const auto hw =
      threads > 0 ? static_cast<std::int64_t>(threads)
                  : static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  const std::int64_t nt = n < kParallelMinValues ? 1 : std::min(hw, rows);
  if (nt <= 1) {
    convert(0, rows);
    return out;
  }
  const std::int64_t per = (rows + nt - 1) / nt;
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(nt));
  for (std::int64_t k = 0; k < nt && k * per < rows; ++k)
    pool.emplace_back([&, k] {
      try {
        convert(k * per, std::min(rows, (k + 1) * per));
      } catch (...) {
        errors[static_cast<std::size_t>(k)] = std::current_exception();
      }
    });
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

}  // namespace kwaai::engine
