// matmul and embedding: the ops that read weights of every dtype. Weights larger than one
// storage-buffer binding are walked in row windows, one dispatch per window.
#include <algorithm>
#include <string>

#include "engine/core/formats.hpp"
#include "engine/core/op_checks.hpp"
#include "engine/vulkan/vulkan_backend_impl.hpp"

namespace kwaai::engine::vulkan {

namespace {

// Unit of the in-shader base offset for a weight dtype (see kernels/weights.glsl): the
// element size of a plain type, bytes for a block-quantized one.
std::size_t weight_unit(DType t) {
  const FormatInfo& f = format_info(t);
  return f.block_elems == 1 ? f.block_bytes : 1;
}

// The weight-decoder suffix of kernel variant names; a format without Vulkan kernels is
// refused by name rather than failing on a missing variant.
std::string weight_variant(const char* op, DType t) {
  const FormatInfo& f = format_info(t);
  if (f.vk_wtype < 0)
    throw std::invalid_argument(std::string(op) + ": the Vulkan backend has no kernels for " +
                                std::string(f.name) + " weights");
  return std::string(f.name);
}

struct MatmulPush {
  std::uint32_t M, N, K, n0, nc, x_base, w_base, y_base;
};

struct EmbeddingPush {
  std::uint32_t T, K, V, row0, rows, zero_invalid, ids_base, w_base, o_base;
};

constexpr std::uint32_t kMatvecThreads = 64;
constexpr std::uint32_t kMatvecRows = 2;  // output rows per workgroup (spec constant 1)
constexpr std::int64_t kMatvecMaxM = 8;
constexpr std::uint32_t kTile = 64;  // matmul.comp tiled path: TM

std::uint32_t u32(std::int64_t v) {
  return static_cast<std::uint32_t>(v);
}

}  // namespace

void VulkanBackend::matmul(const Tensor& x, const Tensor& w, const Tensor& y) {
  const auto d = checks::matmul(x, w, y);
  if (d.M == 0 || d.N == 0) return;
  const std::string wname = weight_variant("matmul", w.dtype());
  const std::string label = "matmul " + wname + " [" + std::to_string(d.M) + "," +
                            std::to_string(d.K) + "]x[" + std::to_string(d.N) + "," +
                            std::to_string(d.K) + "]";
  const View xv = whole("matmul", x, 4);
  const View yv = whole("matmul", y, 4);
  const bool matvec = d.M <= kMatvecMaxM;
  runtime::Pipeline* p = nullptr;
  if (matvec) {
    p = &pipeline(std::string(subgroup_matvec_ ? "matmul_mv_sg_" : "matmul_mv_") + wname,
                  kMatvecThreads, kMatvecRows, true);
  } else {
    p = &pipeline("matmul_mm_" + wname);
  }
  const std::size_t row_bytes = dtype_bytes(w.dtype(), d.K);
  const std::int64_t window_rows = rows_per_window("matmul", row_bytes);
  const std::size_t unit = weight_unit(w.dtype());
  for (std::int64_t n0 = 0; n0 < d.N; n0 += window_rows) {
    const std::int64_t nc = std::min(window_rows, d.N - n0);
    const View wv = view("matmul", w, static_cast<std::size_t>(n0) * row_bytes,
                         static_cast<std::size_t>(nc) * row_bytes, unit);
    MatmulPush pc{u32(d.M), u32(d.N), u32(d.K), u32(n0), u32(nc), xv.base, wv.base, yv.base};
    Grid g;
    if (matvec) {
      g = grid("matmul", (static_cast<std::uint64_t>(nc) + kMatvecRows - 1) / kMatvecRows);
    } else {
      const std::uint64_t gx = (static_cast<std::uint64_t>(nc) + kTile - 1) / kTile;
      const std::uint64_t gy = (static_cast<std::uint64_t>(d.M) + kTile - 1) / kTile;
      const auto& caps = context().caps();
      if (gx > caps.max_compute_work_group_count[0] || gy > caps.max_compute_work_group_count[1])
        throw std::length_error("matmul: " + label + " needs more tiles than " +
                                "maxComputeWorkGroupCount allows");
      g = {static_cast<std::uint32_t>(gx), static_cast<std::uint32_t>(gy)};
    }
    dispatch(*p,
             {{xv.ref, runtime::Access::Read},
              {wv.ref, runtime::Access::Read},
              {yv.ref, runtime::Access::Write}},
             runtime::push_bytes(pc), g, label);
  }
}

void VulkanBackend::embedding(const Tensor& ids, const Tensor& table, const Tensor& out) {
  const auto d = checks::embedding(ids, table, out);
  if (d.T == 0 || d.K == 0) return;
  const std::string wname = weight_variant("embedding", table.dtype());
  const std::string label = "embedding " + wname + " [" + std::to_string(d.T) + "] from [" +
                            std::to_string(d.V) + "," + std::to_string(d.K) + "]";
  const View iv = whole("embedding", ids, 4);
  const View ov = whole("embedding", out, 4);
  auto& p = pipeline("embedding_" + wname, 256);
  const std::size_t row_bytes = dtype_bytes(table.dtype(), d.K);
  const std::int64_t window_rows = rows_per_window("embedding", row_bytes);
  const Grid g = grid("embedding", (static_cast<std::uint64_t>(d.T * d.K) + 255) / 256);
  // The first window also writes the zero rows of out-of-range ids; V == 0 still needs it.
  for (std::int64_t r0 = 0; r0 < std::max<std::int64_t>(d.V, 1); r0 += window_rows) {
    const std::int64_t rows = std::min(window_rows, d.V - r0);
    View wv = rows > 0 ? view("embedding", table, static_cast<std::size_t>(r0) * row_bytes,
                              static_cast<std::size_t>(rows) * row_bytes,
                              weight_unit(table.dtype()))
                       : iv;  // V == 0: nothing is read from the table, bind anything valid
    EmbeddingPush pc{
        u32(d.T),          u32(d.K), u32(d.V), u32(r0), u32(std::max<std::int64_t>(rows, 0)),
        r0 == 0 ? 1u : 0u, iv.base,  wv.base,  ov.base};
    dispatch(p,
             {{iv.ref, runtime::Access::Read},
              {wv.ref, runtime::Access::Read},
              {ov.ref, runtime::Access::Write}},
             runtime::push_bytes(pc), g, label);
  }
}

}  // namespace kwaai::engine::vulkan
