// Row-wise and element-wise ops: rms_norm, layer_norm, rope, kv_write, rope_kv_write, silu_mul,
// gelu, add, softmax, argmax.
// Operands must fit one storage-buffer binding each (std::length_error otherwise); at Llama
// sizes activations are far below that limit.
#include <string>

#include "engine/core/op_checks.hpp"
#include "engine/vulkan/vulkan_backend_impl.hpp"

namespace kwaai::engine::vulkan {

namespace {
constexpr std::uint32_t kThreads = 256;
std::uint32_t u32(std::int64_t v) {
  return static_cast<std::uint32_t>(v);
}
std::uint64_t groups_for(std::int64_t n) {
  return (static_cast<std::uint64_t>(n) + kThreads - 1) / kThreads;
}
}  // namespace

void VulkanBackend::rms_norm(const Tensor& x, const Tensor& weight, const Tensor& y, float eps) {
  const auto d = checks::rms_norm(x, weight, y);
  if (d.rows == 0 || d.cols == 0) return;
  const View xv = whole("rms_norm", x, 4), wv = whole("rms_norm", weight, 4),
             yv = whole("rms_norm", y, 4);
  struct {
    std::uint32_t M, K;
    float eps;
    std::uint32_t x_base, w_base, y_base;
  } pc{u32(d.rows), u32(d.cols), eps, xv.base, wv.base, yv.base};
  dispatch(pipeline("rms_norm_f32", kThreads),
           {{xv.ref, runtime::Access::Read},
            {wv.ref, runtime::Access::Read},
            {yv.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("rms_norm", static_cast<std::uint64_t>(d.rows)),
           "rms_norm " + x.describe());
}

void VulkanBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                               const Tensor& y, float eps) {
  const auto d = checks::layer_norm(x, weight, bias, y);
  if (d.rows == 0 || d.cols == 0) return;
  const char* op = "layer_norm";
  const View xv = whole(op, x, 4), wv = whole(op, weight, 4), bv = whole(op, bias, 4),
             yv = whole(op, y, 4);
  struct {
    std::uint32_t M, K;
    float eps;
    std::uint32_t x_base, w_base, b_base, y_base;
  } pc{u32(d.rows), u32(d.cols), eps, xv.base, wv.base, bv.base, yv.base};
  dispatch(pipeline("layer_norm_f32", kThreads),
           {{xv.ref, runtime::Access::Read},
            {wv.ref, runtime::Access::Read},
            {bv.ref, runtime::Access::Read},
            {yv.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid(op, static_cast<std::uint64_t>(d.rows)),
           "layer_norm " + x.describe());
}

void VulkanBackend::rope(const Tensor& x, const Tensor& positions, const RopeConfig& cfg) {
  const auto d = checks::rope(x, positions);
  if (d.T == 0 || d.H == 0 || d.D == 0) return;
  const Tensor& freq = rope_inv_freq(cfg, d.D);
  const View xv = whole("rope", x, 4), pv = whole("rope", positions, 4),
             fv = whole("rope", freq, 4);
  struct {
    std::uint32_t T, H, D, x_base, pos_base, f_base;
  } pc{u32(d.T), u32(d.H), u32(d.D), xv.base, pv.base, fv.base};
  dispatch(pipeline("rope_f32", kThreads),
           {{xv.ref, runtime::Access::ReadWrite},
            {pv.ref, runtime::Access::Read},
            {fv.ref, runtime::Access::Read}},
           runtime::push_bytes(pc), grid("rope", groups_for(d.T * d.H * (d.D / 2))),
           "rope " + x.describe());
}

void VulkanBackend::kv_write(const Tensor& src, const Tensor& dst, std::int64_t pos) {
  const auto d = checks::kv_write(src, dst, pos);
  const std::int64_t n = d.B * d.T * d.row_elems;
  if (n == 0) return;
  const View sv = whole("kv_write", src, 4), dv = whole("kv_write", dst, 4);
  struct {
    std::uint32_t B, T, L, R, pos, src_base, dst_base;
  } pc{u32(d.B), u32(d.T), u32(d.L), u32(d.row_elems), u32(pos), sv.base, dv.base};
  dispatch(pipeline("kv_write_f32", kThreads),
           {{sv.ref, runtime::Access::Read}, {dv.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("kv_write", groups_for(n)),
           "kv_write " + src.describe() + "->" + dst.describe());
}

void VulkanBackend::rope_kv_write(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& positions, const RopeConfig& cfg,
                                  const Tensor& k_cache, const Tensor& v_cache, std::int64_t pos) {
  const auto d = checks::rope_kv_write(q, k, v, positions, k_cache, v_cache, pos);
  // A device that cannot bind 7 buffers: the composition. (The checks above already require
  // f32 caches: kv_write needs the cache's dtype to be k's.)
  if (!fused_rope_kv_) {
    Backend::rope_kv_write(q, k, v, positions, cfg, k_cache, v_cache, pos);
    return;
  }
  const std::int64_t rows = d.B * d.T;
  const std::int64_t per_row = (d.Hq + d.Hkv) * (d.D / 2) + d.Hkv * d.D;
  if (rows == 0 || per_row == 0) return;
  const Tensor& freq = rope_inv_freq(cfg, d.D);
  const char* op = "rope_kv_write";
  const View qv = whole(op, q, 4), kv = whole(op, k, 4), vv = whole(op, v, 4),
             pv = whole(op, positions, 4), fv = whole(op, freq, 4), kc = whole(op, k_cache, 4),
             vc = whole(op, v_cache, 4);
  struct {
    std::uint32_t rows, T, Hq, Hkv, D, L, pos, q_base, k_base, v_base, pos_base, f_base, kc_base,
        vc_base;
  } pc{u32(rows), u32(d.T), u32(d.Hq), u32(d.Hkv), u32(d.D), u32(d.L), u32(pos),
       qv.base,   kv.base,  vv.base,   pv.base,    fv.base,  kc.base,  vc.base};
  dispatch(pipeline("rope_kv_f32", kThreads),
           {{qv.ref, runtime::Access::ReadWrite},
            {kv.ref, runtime::Access::ReadWrite},
            {vv.ref, runtime::Access::Read},
            {pv.ref, runtime::Access::Read},
            {fv.ref, runtime::Access::Read},
            {kc.ref, runtime::Access::Write},
            {vc.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid(op, groups_for(rows * per_row)),
           "rope_kv_write " + q.describe() + " at " + std::to_string(pos));
}

namespace {
struct EltPush {
  std::uint32_t n, a_base, b_base, o_base;
};
}  // namespace

void VulkanBackend::silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const std::int64_t n = checks::silu_mul(gate, up, out);
  if (n == 0) return;
  const View a = whole("silu_mul", gate, 4), b = whole("silu_mul", up, 4),
             o = whole("silu_mul", out, 4);
  EltPush pc{u32(n), a.base, b.base, o.base};
  dispatch(pipeline("silu_mul_f32", kThreads),
           {{a.ref, runtime::Access::Read},
            {b.ref, runtime::Access::Read},
            {o.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("silu_mul", groups_for(n)), "silu_mul " + gate.describe());
}

void VulkanBackend::gelu(const Tensor& x, const Tensor& out, Gelu kind) {
  const std::int64_t n = checks::gelu(x, out);
  if (n == 0) return;
  const View a = whole("gelu", x, 4), o = whole("gelu", out, 4);
  EltPush pc{u32(n), a.base, a.base, o.base};
  dispatch(pipeline(kind == Gelu::erf ? "gelu_f32" : "gelu_tanh_f32", kThreads),
           {{a.ref, runtime::Access::Read}, {o.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("gelu", groups_for(n)), "gelu " + x.describe());
}

void VulkanBackend::bias_add(const Tensor& y, const Tensor& bias) {
  const auto d = checks::bias_add(y, bias);
  if (d.rows == 0 || d.cols == 0) return;
  const View yv = whole("bias_add", y, 4), bv = whole("bias_add", bias, 4);
  // n = all elements, b_base's row length rides in the otherwise unused o_base slot.
  EltPush pc{u32(d.rows * d.cols), yv.base, bv.base, u32(d.cols)};
  dispatch(pipeline("bias_add_f32", kThreads),
           {{yv.ref, runtime::Access::ReadWrite}, {bv.ref, runtime::Access::Read}},
           runtime::push_bytes(pc), grid("bias_add", groups_for(d.rows * d.cols)),
           "bias_add " + y.describe());
}

void VulkanBackend::add(const Tensor& a, const Tensor& b, const Tensor& out) {
  const std::int64_t n = checks::add(a, b, out);
  if (n == 0) return;
  const View av = whole("add", a, 4), bv = whole("add", b, 4), ov = whole("add", out, 4);
  EltPush pc{u32(n), av.base, bv.base, ov.base};
  dispatch(pipeline("add_f32", kThreads),
           {{av.ref, runtime::Access::Read},
            {bv.ref, runtime::Access::Read},
            {ov.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("add", groups_for(n)), "add " + a.describe());
}

namespace {
struct RowPush {
  std::uint32_t M, N, x_base, o_base;
};
}  // namespace

void VulkanBackend::softmax(const Tensor& x, const Tensor& out) {
  const auto d = checks::softmax(x, out);
  if (d.rows == 0 || d.cols == 0) return;
  const View xv = whole("softmax", x, 4), ov = whole("softmax", out, 4);
  RowPush pc{u32(d.rows), u32(d.cols), xv.base, ov.base};
  dispatch(pipeline("softmax_f32", kThreads),
           {{xv.ref, runtime::Access::Read}, {ov.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("softmax", static_cast<std::uint64_t>(d.rows)),
           "softmax " + x.describe());
}

void VulkanBackend::argmax(const Tensor& x, const Tensor& out) {
  const auto d = checks::argmax(x, out);
  if (d.rows == 0) return;
  const View xv = whole("argmax", x, 4), ov = whole("argmax", out, 4);
  RowPush pc{u32(d.rows), u32(d.cols), xv.base, ov.base};
  dispatch(pipeline("argmax_f32", kThreads),
           {{xv.ref, runtime::Access::Read}, {ov.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("argmax", static_cast<std::uint64_t>(d.rows)),
           "argmax " + x.describe());
}

}  // namespace kwaai::engine::vulkan
