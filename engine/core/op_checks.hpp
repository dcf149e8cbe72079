// Shape/dtype validation shared by every backend, so the CPU and Vulkan backends reject
// exactly the same calls with the same messages. Each check throws std::invalid_argument
// whose message starts with the op name and lists the tensors it got and what it expected,
// and returns the sizes the op needs, so backends never re-derive them.
//
// "Rows" conventions: for ops documented on [M, N] tensors, any rank >= 1 is accepted and
// the leading dimensions are flattened into M (a [B, T, K] activation is fine).
#pragma once

#include <cstdint>
#include <string>

#include "engine/core/backend.hpp"
#include "engine/core/tensor.hpp"

namespace kwaai::engine::checks {

[[noreturn]] void fail(const std::string& op, const std::string& what);

struct MatmulDims {
  std::int64_t M, N, K;
};
MatmulDims matmul(const Tensor& x, const Tensor& w, const Tensor& y);

struct RowDims {
  std::int64_t rows, cols;
};
RowDims rms_norm(const Tensor& x, const Tensor& weight, const Tensor& y);
RowDims layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y);

struct RopeDims {
  std::int64_t T, H, D;
};
RopeDims rope(const Tensor& x, const Tensor& positions);

struct AttentionDims {
  std::int64_t B, T, Hq, Hkv, D, L;
};
AttentionDims attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        std::int64_t n_past, std::int64_t window = 0);

struct KvWriteDims {
  std::int64_t B, T, L;
  std::int64_t row_elems;  // H * D
};
KvWriteDims kv_write(const Tensor& src, const Tensor& dst, std::int64_t pos);

struct RopeKvDims {
  std::int64_t B, T, Hq, Hkv, D, L;
};
// Backend::rope_kv_write: q[B,T,Hq,D], k and v[B,T,Hkv,D] f32, positions i32[B*T], caches
// [B,L,Hkv,D] of one dtype with pos + T <= L.
RopeKvDims rope_kv_write(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions,
                         const Tensor& k_cache, const Tensor& v_cache, std::int64_t pos);

// Same-shape f32 element-wise ops; returns the element count.
std::int64_t silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out);
std::int64_t gelu(const Tensor& x, const Tensor& out);
RowDims bias_add(const Tensor& y, const Tensor& bias);
std::int64_t add(const Tensor& a, const Tensor& b, const Tensor& out);

struct EmbeddingDims {
  std::int64_t T, V, K;
};
EmbeddingDims embedding(const Tensor& ids, const Tensor& table, const Tensor& out);

RowDims softmax(const Tensor& x, const Tensor& out);
RowDims argmax(const Tensor& x, const Tensor& out);

inline constexpr std::int64_t kBlockwise8Block = 4096;
// Returns N (elements of x / codes).
std::int64_t blockwise8_quantize(const Tensor& x, const Tensor& codebook, const Tensor& absmax,
                                 const Tensor& codes);
std::int64_t blockwise8_dequantize(const Tensor& codes, const Tensor& absmax,
                                   const Tensor& codebook, const Tensor& out);

RowDims topk(const Tensor& x, std::int64_t k, const Tensor& indices, const Tensor& values);

// Backend::moe_route: logits f32[M,E] (rank >= 1, leading dims flattened), 1 <= k <= E,
// ids i32[M,k], weights f32[M,k]. Returns {M, E}.
RowDims moe_route(const Tensor& logits, std::int64_t k, const Tensor& ids, const Tensor& weights);
struct RowMoveDims {
  std::int64_t rows;  // R: rows of the indexed tensor
  std::int64_t n;     // indices
  std::int64_t cols;  // N
};
// Backend::gather_rows: src f32[R,N], idx i32[n], out f32[n,N].
RowMoveDims gather_rows(const Tensor& src, const Tensor& idx, const Tensor& out);
// Backend::scatter_add_rows: src f32[n,N], idx i32[n], scale f32[n], y f32[R,N].
RowMoveDims scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& scale,
                             const Tensor& y);

// copy(): same dtype and element count.
void copy(const Tensor& src, const Tensor& dst);
// upload()/download(): host span size must equal the tensor's bytes.
void host_transfer(const char* op, const Tensor& t, std::size_t host_bytes);

}  // namespace kwaai::engine::checks
