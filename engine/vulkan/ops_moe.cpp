// Mixture-of-experts ops: moe_route, gather_rows, scatter_add_rows (kernels/moe.comp).
#include <string>

#include "engine/core/op_checks.hpp"
#include "engine/vulkan/vulkan_backend_impl.hpp"

namespace kwaai::engine::vulkan {

namespace {
constexpr std::uint32_t kThreads = 256;
constexpr std::uint32_t kRouteThreads = 64;  // one row per invocation; M is 1 .. a prompt
std::uint32_t u32(std::int64_t v) {
  return static_cast<std::uint32_t>(v);
}
std::uint64_t groups_for(std::int64_t n, std::uint32_t threads) {
  return (static_cast<std::uint64_t>(n) + threads - 1) / threads;
}
}  // namespace

void VulkanBackend::moe_route(const Tensor& logits, std::int64_t k, const Tensor& ids,
                              const Tensor& weights) {
  const auto d = checks::moe_route(logits, k, ids, weights);
  if (d.rows == 0) return;
  const char* op = "moe_route";
  const View lv = whole(op, logits, 4), iv = whole(op, ids, 4), wv = whole(op, weights, 4);
  struct {
    std::uint32_t M, E, k, l_base, i_base, w_base;
  } pc{u32(d.rows), u32(d.cols), u32(k), lv.base, iv.base, wv.base};
  dispatch(pipeline("moe_route_f32", kRouteThreads),
           {{lv.ref, runtime::Access::Read},
            {iv.ref, runtime::Access::Write},
            {wv.ref, runtime::Access::ReadWrite}},
           runtime::push_bytes(pc), grid(op, groups_for(d.rows, kRouteThreads)),
           "moe_route " + logits.describe() + " k=" + std::to_string(k));
}

void VulkanBackend::gather_rows(const Tensor& src, const Tensor& idx, const Tensor& out) {
  const auto d = checks::gather_rows(src, idx, out);
  if (d.n == 0 || d.cols == 0) return;
  const char* op = "gather_rows";
  const View sv = whole(op, src, 4), iv = whole(op, idx, 4), ov = whole(op, out, 4);
  struct {
    std::uint32_t n, N, R, s_base, i_base, o_base;
  } pc{u32(d.n), u32(d.cols), u32(d.rows), sv.base, iv.base, ov.base};
  dispatch(pipeline("gather_rows_f32", kThreads),
           {{sv.ref, runtime::Access::Read},
            {iv.ref, runtime::Access::Read},
            {ov.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid(op, groups_for(d.n * d.cols, kThreads)),
           "gather_rows " + out.describe());
}

void VulkanBackend::scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& scale,
                                     const Tensor& y) {
  const auto d = checks::scatter_add_rows(src, idx, scale, y);
  if (d.n == 0 || d.cols == 0) return;
  const char* op = "scatter_add_rows";
  const View sv = whole(op, src, 4), iv = whole(op, idx, 4), cv = whole(op, scale, 4),
             yv = whole(op, y, 4);
  struct {
    std::uint32_t n, N, R, s_base, i_base, c_base, y_base;
  } pc{u32(d.n), u32(d.cols), u32(d.rows), sv.base, iv.base, cv.base, yv.base};
  dispatch(pipeline("scatter_add_rows_f32", kThreads),
           {{sv.ref, runtime::Access::Read},
            {iv.ref, runtime::Access::Read},
            {cv.ref, runtime::Access::Read},
            {yv.ref, runtime::Access::ReadWrite}},
           runtime::push_bytes(pc), grid(op, groups_for(d.n * d.cols, kThreads)),
           "scatter_add_rows " + src.describe());
}

}  // namespace kwaai::engine::vulkan
