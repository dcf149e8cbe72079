// attention (causal GQA over the KV cache) and the compression ops of the wire format:
// blockwise8 quantize/dequantize and top-k by magnitude.
#include <algorithm>
#include <bit>
#include <string>

#include "engine/core/op_checks.hpp"
#include "engine/vulkan/vulkan_backend_impl.hpp"

namespace kwaai::engine::vulkan {

namespace {
constexpr std::uint32_t kThreads = 256;
constexpr std::int64_t kAttnMaxD = 512;  // attention.comp: shared q of 512 floats
// Split decode attention: keys per partition (a multiple of the 64/128-thread workgroup) and
// the most partitions per (sequence, head) before the partitions grow instead.
constexpr std::int64_t kAttnPartKeys = 256;
constexpr std::int64_t kAttnMaxParts = 64;
std::uint32_t u32(std::int64_t v) {
  return static_cast<std::uint32_t>(v);
}
}  // namespace

void VulkanBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                              std::int64_t n_past, float scale, std::int64_t window,
                              float alibi_max_bias) {
  const auto d = checks::attention(q, k, v, out, n_past, window);
  if (d.B == 0 || d.T == 0 || d.Hq == 0 || d.D == 0) return;
  if (d.D > kAttnMaxD)
    throw std::length_error("attention: head dim " + std::to_string(d.D) +
                            " exceeds the kernel's limit of " + std::to_string(kAttnMaxD));
  // Each thread owns up to 4 output dims: 64 threads cover D <= 256, 128 threads D <= 512.
  const std::uint32_t wg = d.D > 256 ? 128 : 64;
  const View qv = whole("attention", q, 4), kv = whole("attention", k, 4),
             vv = whole("attention", v, 4), ov = whole("attention", out, 4);
  const std::string label =
      "attention q" + q.describe() + " kv" + k.describe() + " past " + std::to_string(n_past);
  // Decode over a long context is split over partitions of the cache (flash-decoding): with
  // one workgroup per (sequence, head) a single sequence would occupy Hq workgroups only.
  const std::int64_t n_keys = n_past + 1;
  std::int64_t part_keys = kAttnPartKeys;
  if ((n_keys + part_keys - 1) / part_keys > kAttnMaxParts)
    part_keys = ((n_keys + kAttnMaxParts - 1) / kAttnMaxParts + wg - 1) / wg * wg;
  const std::int64_t parts = (n_keys + part_keys - 1) / part_keys;
  const bool split = d.T == 1 && parts >= 2;
  const AlibiSlopes alibi(d.Hq, alibi_max_bias);
  struct {
    std::uint32_t B, T, Hq, Hkv, D, L, n_past;
    float scale;
    std::uint32_t q_base, k_base, v_base, o_base, parts, part_keys, window;
    float alibi_m0, alibi_m1;
    std::uint32_t alibi_n;
  } pc{u32(d.B),
       u32(d.T),
       u32(d.Hq),
       u32(d.Hkv),
       u32(d.D),
       u32(d.L),
       u32(n_past),
       scale,
       qv.base,
       kv.base,
       vv.base,
       ov.base,
       u32(split ? parts : 1),
       u32(part_keys),
       u32(window),
       alibi.m0,
       alibi.m1,
       u32(alibi.n)};
  const std::int64_t rows = d.B * d.T * d.Hq;
  if (!split) {
    dispatch(pipeline("attention_f32", wg),
             {{qv.ref, runtime::Access::Read},
              {kv.ref, runtime::Access::Read},
              {vv.ref, runtime::Access::Read},
              {ov.ref, runtime::Access::Write}},
             runtime::push_bytes(pc), grid("attention", static_cast<std::uint64_t>(rows)), label);
    return;
  }
  // Per partition: D accumulator values, then the running max and sum.
  const Tensor part = alloc(DType::F32, {rows * parts * (d.D + 2)});
  const View pv = whole("attention", part, 4);
  dispatch(pipeline("attention_split_f32", wg),
           {{qv.ref, runtime::Access::Read},
            {kv.ref, runtime::Access::Read},
            {vv.ref, runtime::Access::Read},
            {pv.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid("attention", static_cast<std::uint64_t>(rows * parts)),
           label + " split " + std::to_string(parts));
  struct {
    std::uint32_t rows, D, parts, o_base;
  } cc{u32(rows), u32(d.D), u32(parts), ov.base};
  dispatch(pipeline("attention_combine_f32", 64),
           {{pv.ref, runtime::Access::Read}, {ov.ref, runtime::Access::Write}},
           runtime::push_bytes(cc), grid("attention", static_cast<std::uint64_t>(rows)),
           label + " combine");
}

namespace {
struct Bw8Push {
  std::uint32_t n, x_base, absmax_base, cb_base, codes_base;
};
}  // namespace

void VulkanBackend::blockwise8_quantize(const Tensor& x, const Tensor& codebook,
                                        const Tensor& absmax, const Tensor& codes) {
  const std::int64_t n = checks::blockwise8_quantize(x, codebook, absmax, codes);
  if (n == 0) return;
  const char* op = "blockwise8_quantize";
  const View xv = whole(op, x, 4), av = whole(op, absmax, 4), cv = whole(op, codebook, 4),
             qv = whole(op, codes, 1);
  Bw8Push pc{u32(n), xv.base, av.base, cv.base, qv.base};
  const std::string label = std::string(op) + " " + x.describe();
  const std::int64_t blocks = (n + checks::kBlockwise8Block - 1) / checks::kBlockwise8Block;
  dispatch(pipeline("blockwise8_absmax", kThreads),
           {{xv.ref, runtime::Access::Read}, {av.ref, runtime::Access::Write}},
           runtime::push_bytes(pc), grid(op, static_cast<std::uint64_t>(blocks)), label);
  // One invocation per 32-bit word the codes touch (partial words at both ends included).
  const std::uint64_t words = (qv.base + static_cast<std::uint64_t>(n) + 3) / 4 - qv.base / 4;
  dispatch(pipeline("blockwise8_quantize", kThreads),
           {{xv.ref, runtime::Access::Read},
            {av.ref, runtime::Access::Read},
            {cv.ref, runtime::Access::Read},
            {qv.ref, runtime::Access::ReadWrite}},
           runtime::push_bytes(pc), grid(op, (words + kThreads - 1) / kThreads), label);
}

void VulkanBackend::blockwise8_dequantize(const Tensor& codes, const Tensor& absmax,
                                          const Tensor& codebook, const Tensor& out) {
  const std::int64_t n = checks::blockwise8_dequantize(codes, absmax, codebook, out);
  if (n == 0) return;
  const char* op = "blockwise8_dequantize";
  const View ov = whole(op, out, 4), av = whole(op, absmax, 4), cv = whole(op, codebook, 4),
             qv = whole(op, codes, 1);
  Bw8Push pc{u32(n), ov.base, av.base, cv.base, qv.base};
  dispatch(pipeline("blockwise8_dequantize", kThreads),
           {{ov.ref, runtime::Access::Write},
            {av.ref, runtime::Access::Read},
            {cv.ref, runtime::Access::Read},
            {qv.ref, runtime::Access::Read}},
           runtime::push_bytes(pc),
           grid(op, (static_cast<std::uint64_t>(n) + kThreads - 1) / kThreads),
           std::string(op) + " " + out.describe());
}

void VulkanBackend::topk(const Tensor& x, std::int64_t k, const Tensor& indices,
                         const Tensor& values) {
  const auto d = checks::topk(x, k, indices, values);
  if (d.rows == 0 || k == 0) return;
  const std::uint64_t P = std::bit_ceil(static_cast<std::uint64_t>(k));
  // Scratch (key, index) pairs for the per-row bitonic sort; freed after the submission.
  Tensor scratch = alloc(DType::I32, {d.rows, static_cast<std::int64_t>(2 * P)});
  const View xv = whole("topk", x, 4), iv = whole("topk", indices, 4),
             vv = whole("topk", values, 4), sv = whole("topk", scratch, 4);
  struct {
    std::uint32_t M, N, k, P, x_base, i_base, v_base, s_base;
  } pc{u32(d.rows), u32(d.cols), u32(k),  static_cast<std::uint32_t>(P),
       xv.base,     iv.base,     vv.base, sv.base};
  dispatch(pipeline("topk_abs_f32"),
           {{xv.ref, runtime::Access::Read},
            {iv.ref, runtime::Access::Write},
            {vv.ref, runtime::Access::Write},
            {sv.ref, runtime::Access::ReadWrite}},
           runtime::push_bytes(pc), grid("topk", static_cast<std::uint64_t>(d.rows)),
           "topk " + x.describe() + " k=" + std::to_string(k));
}

}  // namespace kwaai::engine::vulkan
