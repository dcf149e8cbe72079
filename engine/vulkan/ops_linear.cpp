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

struct MatmulPush {  // kernels/matmul.comp (tiled)
  std::uint32_t M, N, K, n0, nc, x_base, w_base, y_base, accumulate;
};

struct MatvecPush {  // kernels/matvec.comp
  std::uint32_t M, N, K, n0, nc, x_base, w_base, y_base, w2_base, accumulate;
};

struct EmbeddingPush {
  std::uint32_t T, K, V, row0, rows, zero_invalid, ids_base, w_base, o_base;
};

constexpr std::int64_t kMatvecMaxM = 8;

std::uint32_t u32(std::int64_t v) {
  return static_cast<std::uint32_t>(v);
}

}  // namespace

void VulkanBackend::matmul(const Tensor& x, const Tensor& w, const Tensor& y) {
  linear("matmul", x, w, nullptr, y, false);
}

void VulkanBackend::matmul_add(const Tensor& x, const Tensor& w, const Tensor& y) {
  linear("matmul_add", x, w, nullptr, y, true);
}

void VulkanBackend::matmul_silu_mul(const Tensor& x, const Tensor& w_gate, const Tensor& w_up,
                                    const Tensor& out) {
  const auto d = checks::matmul(x, w_gate, out);
  checks::matmul(x, w_up, out);
  // One pass over both weights for decode; prefill (compute bound) composes the tiled products.
  if (d.M > kMatvecMaxM || w_gate.dtype() != w_up.dtype()) {
    Backend::matmul_silu_mul(x, w_gate, w_up, out);
    return;
  }
  linear("matmul_silu_mul", x, w_gate, &w_up, out, false);
}

void VulkanBackend::linear(const char* op, const Tensor& x, const Tensor& w, const Tensor* w_up,
                           const Tensor& y, bool accumulate) {
  const auto d = checks::matmul(x, w, y);
  if (d.M == 0 || d.N == 0) return;
  const std::string wname = weight_variant(op, w.dtype());
  const std::string label = std::string(op) + " " + wname + " [" + std::to_string(d.M) + "," +
                            std::to_string(d.K) + "]x[" + std::to_string(d.N) + "," +
                            std::to_string(d.K) + "]" + (w_up ? " gate+up" : "");
  const View xv = whole(op, x, 4);
  const View yv = whole(op, y, 4);
  const bool matvec = d.M <= kMatvecMaxM;
  const runtime::Access y_access = accumulate ? runtime::Access::ReadWrite : runtime::Access::Write;
  runtime::Pipeline* p = nullptr;
  MatmulTile tile;
  if (matvec) {
    const std::string name = std::string(w_up ? "matmul_mv_gu_" : "matmul_mv_") +
                             (subgroup_matvec_ ? "sg_" : "") + wname;
    p = &pipeline_spec(name, {mv_.threads, mv_.rows, static_cast<std::uint32_t>(d.M)});
  } else {
    tile = matmul_tile(context().caps(), opts_, d.M, d.N);
    p = &pipeline_spec("matmul_mm_" + wname, {tile.tile, tile.block, tile.threads()});
  }
  const std::size_t row_bytes = dtype_bytes(w.dtype(), d.K);
  const std::int64_t window_rows = rows_per_window(op, row_bytes);
  const std::size_t unit = weight_unit(w.dtype());
  for (std::int64_t n0 = 0; n0 < d.N; n0 += window_rows) {
    const std::int64_t nc = std::min(window_rows, d.N - n0);
    const std::size_t begin = static_cast<std::size_t>(n0) * row_bytes;
    const std::size_t len = static_cast<std::size_t>(nc) * row_bytes;
    const View wv = view(op, w, begin, len, unit);
    if (matvec) {
      const std::uint64_t groups = (static_cast<std::uint64_t>(nc) + mv_.rows - 1) / mv_.rows;
      const Grid g = grid(op, groups);
      if (w_up) {
        const View uv = view(op, *w_up, begin, len, unit);
        const MatvecPush pc{u32(d.M), u32(d.N), u32(d.K), u32(n0), u32(nc),
                            xv.base,  wv.base,  yv.base,  uv.base, accumulate ? 1u : 0u};
        dispatch(*p,
                 {{xv.ref, runtime::Access::Read},
                  {wv.ref, runtime::Access::Read},
                  {yv.ref, y_access},
                  {uv.ref, runtime::Access::Read}},
                 runtime::push_bytes(pc), g, label);
      } else {
        const MatvecPush pc{u32(d.M), u32(d.N), u32(d.K), u32(n0), u32(nc),
                            xv.base,  wv.base,  yv.base,  0u,      accumulate ? 1u : 0u};
        dispatch(
            *p,
            {{xv.ref, runtime::Access::Read}, {wv.ref, runtime::Access::Read}, {yv.ref, y_access}},
            runtime::push_bytes(pc), g, label);
      }
      continue;
    }
    const std::uint64_t gx = (static_cast<std::uint64_t>(nc) + tile.tile - 1) / tile.tile;
    const std::uint64_t gy = (static_cast<std::uint64_t>(d.M) + tile.tile - 1) / tile.tile;
    const auto& caps = context().caps();
    if (gx > caps.max_compute_work_group_count[0] || gy > caps.max_compute_work_group_count[1])
      throw std::length_error(std::string(op) + ": " + label + " needs more tiles than " +
                              "maxComputeWorkGroupCount allows");
    const Grid g{static_cast<std::uint32_t>(gx), static_cast<std::uint32_t>(gy)};
    const MatmulPush pc{u32(d.M), u32(d.N), u32(d.K),
                        u32(n0),  u32(nc),  xv.base,
                        wv.base,  yv.base,  accumulate ? 1u : 0u};
    dispatch(*p,
             {{xv.ref, runtime::Access::Read}, {wv.ref, runtime::Access::Read}, {yv.ref, y_access}},
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
