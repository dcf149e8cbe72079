#include "engine/core/op_checks.hpp"

#include <stdexcept>
#include <string>

#include "engine/core/formats.hpp"

namespace kwaai::engine::checks {

void fail(const std::string& op, const std::string& what) {
  throw std::invalid_argument(op + ": " + what);
}

namespace {

void defined(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) fail(op, std::string(name) + " is an undefined tensor");
}

void dtype_is(const char* op, const char* name, const Tensor& t, DType want) {
  defined(op, name, t);
  if (t.dtype() != want)
    fail(op, std::string(name) + " is " + t.describe() + ", expected dtype " +
                 std::string(dtype_name(want)));
}

void rank_is(const char* op, const char* name, const Tensor& t, int want) {
  if (t.rank() != want)
    fail(op, std::string(name) + " is " + t.describe() + ", expected rank " + std::to_string(want));
}

void rank_at_least(const char* op, const char* name, const Tensor& t, int want) {
  if (t.rank() < want)
    fail(op,
         std::string(name) + " is " + t.describe() + ", expected rank >= " + std::to_string(want));
}

void same_shape(const char* op, const char* na, const Tensor& a, const char* nb, const Tensor& b) {
  if (a.shape() != b.shape())
    fail(op, std::string(na) + " " + a.describe() + " and " + nb + " " + b.describe() +
                 " must have the same shape");
}

bool is_weight_dtype(DType t) {
  return format_info(t).weight;
}

std::string weight_dtypes() {
  return format_names(is_weight_format);
}

RowDims rows_of(const Tensor& t) {
  const std::int64_t cols = t.dim(-1);
  return {cols == 0 ? 0 : t.numel() / cols, cols};
}

}  // namespace

MatmulDims matmul(const Tensor& x, const Tensor& w, const Tensor& y) {
  const char* op = "matmul";
  dtype_is(op, "x", x, DType::F32);
  dtype_is(op, "y", y, DType::F32);
  defined(op, "w", w);
  rank_at_least(op, "x", x, 1);
  rank_is(op, "w", w, 2);
  rank_at_least(op, "y", y, 1);
  if (!is_weight_dtype(w.dtype()))
    fail(op, "w is " + w.describe() + ", expected one of " + weight_dtypes());
  const std::int64_t N = w.dim(0), K = w.dim(1);
  if (x.dim(-1) != K)
    fail(op, "x " + x.describe() + " · w " + w.describe() + "^T: x's last dimension must be " +
                 std::to_string(K));
  const std::int64_t M = rows_of(x).rows;
  if (y.dim(-1) != N || rows_of(y).rows != M || y.rank() != x.rank())
    fail(op, "y is " + y.describe() + ", expected x's leading dimensions with last dimension " +
                 std::to_string(N) + " (x " + x.describe() + ", w " + w.describe() + ")");
  if (const std::int64_t be = format_info(w.dtype()).block_elems; K % be != 0)
    fail(op, "quantized w " + w.describe() + " needs K % " + std::to_string(be) + " == 0");
  return {M, N, K};
}

namespace {
RowDims norm_dims(const char* op, const Tensor& x, const Tensor& weight, const Tensor& y) {
  dtype_is(op, "x", x, DType::F32);
  dtype_is(op, "weight", weight, DType::F32);
  dtype_is(op, "y", y, DType::F32);
  rank_at_least(op, "x", x, 1);
  same_shape(op, "x", x, "y", y);
  if (weight.rank() != 1 || weight.dim(0) != x.dim(-1))
    fail(op, "weight is " + weight.describe() + ", expected f32[" + std::to_string(x.dim(-1)) +
                 "] for x " + x.describe());
  return rows_of(x);
}
}  // namespace

RowDims rms_norm(const Tensor& x, const Tensor& weight, const Tensor& y) {
  return norm_dims("rms_norm", x, weight, y);
}

RowDims layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y) {
  const char* op = "layer_norm";
  dtype_is(op, "bias", bias, DType::F32);
  const RowDims d = norm_dims(op, x, weight, y);
  if (bias.rank() != 1 || bias.dim(0) != x.dim(-1))
    fail(op, "bias is " + bias.describe() + ", expected f32[" + std::to_string(x.dim(-1)) +
                 "] for x " + x.describe());
  return d;
}

RopeDims rope(const Tensor& x, const Tensor& positions) {
  const char* op = "rope";
  dtype_is(op, "x", x, DType::F32);
  dtype_is(op, "positions", positions, DType::I32);
  rank_is(op, "x", x, 3);
  const std::int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2);
  if (D % 2 != 0) fail(op, "x " + x.describe() + " needs an even head dimension");
  if (positions.rank() != 1 || positions.dim(0) != T)
    fail(op, "positions is " + positions.describe() + ", expected i32[" + std::to_string(T) +
                 "] for x " + x.describe());
  return {T, H, D};
}

AttentionDims attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        std::int64_t n_past, std::int64_t window) {
  const char* op = "attention";
  dtype_is(op, "q", q, DType::F32);
  dtype_is(op, "k", k, DType::F32);
  dtype_is(op, "v", v, DType::F32);
  dtype_is(op, "out", out, DType::F32);
  rank_is(op, "q", q, 4);
  rank_is(op, "k", k, 4);
  same_shape(op, "k", k, "v", v);
  same_shape(op, "q", q, "out", out);
  const std::int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  const std::int64_t L = k.dim(1), Hkv = k.dim(2);
  if (k.dim(0) != B || k.dim(3) != D)
    fail(op, "k " + k.describe() + " must be [B, L, Hkv, D] matching q " + q.describe());
  if (Hkv == 0 || Hq % Hkv != 0)
    fail(op, "query heads of q " + q.describe() + " must be a multiple of kv heads of k " +
                 k.describe());
  if (n_past < 0 || n_past + T > L)
    fail(op, "n_past " + std::to_string(n_past) + " + T " + std::to_string(T) +
                 " exceeds the cache length of k " + k.describe());
  if (window < 0 || window > 0xFFFFFFFFll)
    fail(op, "sliding window " + std::to_string(window) + " (0: none)");
  return {B, T, Hq, Hkv, D, L};
}

KvWriteDims kv_write(const Tensor& src, const Tensor& dst, std::int64_t pos) {
  const char* op = "kv_write";
  defined(op, "src", src);
  defined(op, "dst", dst);
  if (src.dtype() != dst.dtype())
    fail(op, "src " + src.describe() + " and dst " + dst.describe() + " differ in dtype");
  if (src.dtype() != DType::F32 && src.dtype() != DType::F16 && src.dtype() != DType::BF16)
    fail(op, "src " + src.describe() + ": expected f32, f16 or bf16");
  rank_is(op, "src", src, 4);
  rank_is(op, "dst", dst, 4);
  if (src.dim(0) != dst.dim(0) || src.dim(2) != dst.dim(2) || src.dim(3) != dst.dim(3))
    fail(op, "src " + src.describe() + " and dst " + dst.describe() +
                 " must agree on B, H and D ([B,T,H,D] into [B,L,H,D])");
  if (pos < 0 || pos + src.dim(1) > dst.dim(1))
    fail(op, "rows " + std::to_string(pos) + ".." + std::to_string(pos + src.dim(1)) +
                 " do not fit in dst " + dst.describe());
  return {src.dim(0), src.dim(1), dst.dim(1), src.dim(2) * src.dim(3)};
}

RopeKvDims rope_kv_write(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions,
                         const Tensor& k_cache, const Tensor& v_cache, std::int64_t pos) {
  const char* op = "rope_kv_write";
  dtype_is(op, "q", q, DType::F32);
  dtype_is(op, "k", k, DType::F32);
  dtype_is(op, "v", v, DType::F32);
  dtype_is(op, "positions", positions, DType::I32);
  rank_is(op, "q", q, 4);
  rank_is(op, "k", k, 4);
  same_shape(op, "k", k, "v", v);
  const std::int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  if (k.dim(0) != B || k.dim(1) != T || k.dim(3) != D)
    fail(op, "q " + q.describe() + " and k " + k.describe() +
                 " must agree on B, T and D ([B,T,Hq,D] and [B,T,Hkv,D])");
  if (D % 2 != 0) fail(op, "q " + q.describe() + " needs an even head dimension");
  if (positions.rank() != 1 || positions.dim(0) != B * T)
    fail(op, "positions is " + positions.describe() + ", expected i32[" + std::to_string(B * T) +
                 "] for q " + q.describe());
  const KvWriteDims kd = kv_write(k, k_cache, pos);
  kv_write(v, v_cache, pos);
  same_shape(op, "k_cache", k_cache, "v_cache", v_cache);
  return {B, T, Hq, k.dim(2), D, kd.L};
}

std::int64_t silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const char* op = "silu_mul";
  dtype_is(op, "gate", gate, DType::F32);
  dtype_is(op, "up", up, DType::F32);
  dtype_is(op, "out", out, DType::F32);
  same_shape(op, "gate", gate, "up", up);
  same_shape(op, "gate", gate, "out", out);
  return gate.numel();
}

std::int64_t gelu(const Tensor& x, const Tensor& out) {
  const char* op = "gelu";
  dtype_is(op, "x", x, DType::F32);
  dtype_is(op, "out", out, DType::F32);
  same_shape(op, "x", x, "out", out);
  return x.numel();
}

RowDims bias_add(const Tensor& y, const Tensor& bias) {
  const char* op = "bias_add";
  dtype_is(op, "y", y, DType::F32);
  dtype_is(op, "bias", bias, DType::F32);
  rank_at_least(op, "y", y, 1);
  if (bias.rank() != 1 || bias.dim(0) != y.dim(-1))
    fail(op, "bias is " + bias.describe() + ", expected f32[" + std::to_string(y.dim(-1)) +
                 "] for y " + y.describe());
  return rows_of(y);
}

std::int64_t add(const Tensor& a, const Tensor& b, const Tensor& out) {
  const char* op = "add";
  dtype_is(op, "a", a, DType::F32);
  dtype_is(op, "b", b, DType::F32);
  dtype_is(op, "out", out, DType::F32);
  same_shape(op, "a", a, "b", b);
  same_shape(op, "a", a, "out", out);
  return a.numel();
}

EmbeddingDims embedding(const Tensor& ids, const Tensor& table, const Tensor& out) {
  const char* op = "embedding";
  dtype_is(op, "ids", ids, DType::I32);
  dtype_is(op, "out", out, DType::F32);
  defined(op, "table", table);
  rank_is(op, "ids", ids, 1);
  rank_is(op, "table", table, 2);
  if (!is_weight_dtype(table.dtype()))
    fail(op, "table is " + table.describe() + ", expected one of " + weight_dtypes());
  const std::int64_t T = ids.dim(0), V = table.dim(0), K = table.dim(1);
  if (out.rank() != 2 || out.dim(0) != T || out.dim(1) != K)
    fail(op, "out is " + out.describe() + ", expected f32[" + std::to_string(T) + ", " +
                 std::to_string(K) + "] for ids " + ids.describe() + " and table " +
                 table.describe());
  return {T, V, K};
}

RowDims softmax(const Tensor& x, const Tensor& out) {
  const char* op = "softmax";
  dtype_is(op, "x", x, DType::F32);
  dtype_is(op, "out", out, DType::F32);
  rank_at_least(op, "x", x, 1);
  same_shape(op, "x", x, "out", out);
  return rows_of(x);
}

RowDims argmax(const Tensor& x, const Tensor& out) {
  const char* op = "argmax";
  dtype_is(op, "x", x, DType::F32);
  dtype_is(op, "out", out, DType::I32);
  rank_at_least(op, "x", x, 1);
  const RowDims d = rows_of(x);
  if (d.cols == 0) fail(op, "x " + x.describe() + " has empty rows");
  if (out.numel() != d.rows)
    fail(op, "out is " + out.describe() + ", expected i32 with " + std::to_string(d.rows) +
                 " elements (one per row of x " + x.describe() + ")");
  return d;
}

namespace {
void codebook_ok(const char* op, const Tensor& codebook) {
  dtype_is(op, "codebook", codebook, DType::F32);
  if (codebook.rank() != 1 || codebook.dim(0) != 256)
    fail(op, "codebook is " + codebook.describe() + ", expected f32[256]");
}
void absmax_ok(const char* op, const Tensor& absmax, std::int64_t n) {
  dtype_is(op, "absmax", absmax, DType::F32);
  const std::int64_t blocks = (n + kBlockwise8Block - 1) / kBlockwise8Block;
  if (absmax.numel() != blocks)
    fail(op, "absmax is " + absmax.describe() + ", expected f32[" + std::to_string(blocks) +
                 "] (one per 4096 values of " + std::to_string(n) + ")");
}
}  // namespace

std::int64_t blockwise8_quantize(const Tensor& x, const Tensor& codebook, const Tensor& absmax,
                                 const Tensor& codes) {
  const char* op = "blockwise8_quantize";
  dtype_is(op, "x", x, DType::F32);
  dtype_is(op, "codes", codes, DType::U8);
  codebook_ok(op, codebook);
  if (codes.numel() != x.numel())
    fail(op, "codes " + codes.describe() + " must have as many elements as x " + x.describe());
  absmax_ok(op, absmax, x.numel());
  return x.numel();
}

std::int64_t blockwise8_dequantize(const Tensor& codes, const Tensor& absmax,
                                   const Tensor& codebook, const Tensor& out) {
  const char* op = "blockwise8_dequantize";
  dtype_is(op, "codes", codes, DType::U8);
  dtype_is(op, "out", out, DType::F32);
  codebook_ok(op, codebook);
  if (codes.numel() != out.numel())
    fail(op, "out " + out.describe() + " must have as many elements as codes " + codes.describe());
  absmax_ok(op, absmax, codes.numel());
  return codes.numel();
}

namespace {
// Per row of x[M,N]: k in [1, N] picks, written to an i32 [M,k] and an f32 [M,k] tensor (topk's
// indices and values, moe_route's expert ids and weights).
RowDims k_per_row(const char* op, const char* x_name, const Tensor& x, std::int64_t k,
                  const char* i_name, const Tensor& i_out, const char* v_name,
                  const Tensor& v_out) {
  dtype_is(op, x_name, x, DType::F32);
  dtype_is(op, i_name, i_out, DType::I32);
  dtype_is(op, v_name, v_out, DType::F32);
  rank_at_least(op, x_name, x, 1);
  const RowDims d = rows_of(x);
  if (k < 1 || k > d.cols)
    fail(op, "k = " + std::to_string(k) + " must be in [1, " + std::to_string(d.cols) + "] for " +
                 x_name + " " + x.describe());
  const Shape want{d.rows, k};
  if (i_out.shape() != want || v_out.shape() != want)
    fail(op, std::string(i_name) + " " + i_out.describe() + " and " + v_name + " " +
                 v_out.describe() + " must both be " + shape_str(want));
  return d;
}
}  // namespace

RowDims topk(const Tensor& x, std::int64_t k, const Tensor& indices, const Tensor& values) {
  return k_per_row("topk", "x", x, k, "indices", indices, "values", values);
}

RowDims moe_route(const Tensor& logits, std::int64_t k, const Tensor& ids, const Tensor& weights) {
  return k_per_row("moe_route", "logits", logits, k, "ids", ids, "weights", weights);
}

namespace {
// The [R,N] tensor and the [n,N] tensor of a row gather/scatter, with idx i32[n].
RowMoveDims row_move(const char* op, const char* indexed_name, const Tensor& indexed,
                     const char* packed_name, const Tensor& packed, const Tensor& idx) {
  dtype_is(op, indexed_name, indexed, DType::F32);
  dtype_is(op, packed_name, packed, DType::F32);
  dtype_is(op, "idx", idx, DType::I32);
  rank_is(op, indexed_name, indexed, 2);
  rank_is(op, packed_name, packed, 2);
  rank_is(op, "idx", idx, 1);
  if (packed.dim(0) != idx.dim(0) || packed.dim(1) != indexed.dim(1))
    fail(op, std::string(packed_name) + " " + packed.describe() + " must be [" +
                 std::to_string(idx.dim(0)) + ", " + std::to_string(indexed.dim(1)) + "] for idx " +
                 idx.describe() + " and " + indexed_name + " " + indexed.describe());
  return {indexed.dim(0), idx.dim(0), indexed.dim(1)};
}
}  // namespace

RowMoveDims gather_rows(const Tensor& src, const Tensor& idx, const Tensor& out) {
  return row_move("gather_rows", "src", src, "out", out, idx);
}

RowMoveDims scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& scale,
                             const Tensor& y) {
  const char* op = "scatter_add_rows";
  const RowMoveDims d = row_move(op, "y", y, "src", src, idx);
  dtype_is(op, "scale", scale, DType::F32);
  if (scale.shape() != idx.shape())
    fail(op, "scale " + scale.describe() + " must have idx's shape " + idx.describe());
  return d;
}

void copy(const Tensor& src, const Tensor& dst) {
  const char* op = "copy";
  defined(op, "src", src);
  defined(op, "dst", dst);
  if (src.dtype() != dst.dtype() || src.numel() != dst.numel())
    fail(op, "src " + src.describe() + " and dst " + dst.describe() +
                 " need the same dtype and element count");
}

void host_transfer(const char* op, const Tensor& t, std::size_t host_bytes) {
  defined(op, "tensor", t);
  if (host_bytes != t.nbytes())
    fail(op, "tensor " + t.describe() + " has " + std::to_string(t.nbytes()) +
                 " bytes but the host buffer has " + std::to_string(host_bytes));
}

}  // namespace kwaai::engine::checks
