// The op interface every compute backend implements (CPU: OpenBLAS + vectorised loops;
// Vulkan: GLSL compute kernels). Engine code above this line never sees Vulkan types.
//
// Execution model: ops are *recorded* in call order into the backend's current stream and
// run in that order. The CPU backend runs each op at once; the Vulkan backend records them
// into one command buffer (barriers derived from which tensors each op reads and writes)
// and submits on flush() or download(). So a whole decode step of a span is one upload,
// one submission and one download.
//
// Conventions for every op:
//  * tensors are contiguous row-major, last dimension fastest; activations are f32;
//  * shapes and dtypes are checked up front: a mismatch throws std::invalid_argument whose
//    message names the op, the tensors' shapes/dtypes and what was expected; a size over a
//    device limit throws std::length_error naming the limit;
//  * outputs may not alias inputs unless the op says so (rope works in place).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/core/tensor.hpp"

namespace kwaai::engine {

enum class BackendKind { Cpu, Vulkan };

// ALiBi (Press et al.; Bloom): head h of `heads` adds slope_h * (j - p) to its score for
// cache row j seen from position p. With n = the largest power of two <= heads,
// slope_h = 2^(-max_bias/n)^(h+1) for h < n, else 2^(-max_bias/(2n))^(2(h-n)+1): HF's
// build_alibi_tensor with max_bias 8. (HF adds slope * j; a per-query constant leaves the
// softmax unchanged, and j - p keeps the bias small next to the scores at long positions.)
enum class Gelu { erf, tanh };

struct AlibiSlopes {
  float m0 = 0, m1 = 0;
  std::int64_t n = 0;  // largest power of two <= heads
  AlibiSlopes(std::int64_t heads, float max_bias);
  // Head h's slope (computed once per head: the CPU's attention reads it per row and key block).
  float operator()(std::int64_t h) const { return slope_[static_cast<std::size_t>(h)]; }

 private:
  std::vector<float> slope_;
};

struct RopeConfig {
  float theta = 10000.0f;
  // Llama-3 frequency scaling (HF rope_scaling.rope_type == "llama3"); factor <= 1 disables it.
  float llama3_factor = 0.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  std::int64_t original_max_position = 8192;
};

struct OpTiming {
  std::string op;      // "matmul q8_0 [1,4096]x[14336,4096]"
  double seconds = 0;  // device time (GPU timestamps) or wall time (CPU)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendKind kind() const = 0;
  virtual std::string name() const = 0;               // "cpu" or "vulkan:0"
  virtual std::string description() const = 0;        // human-readable device name
  virtual std::uint64_t memory_capacity() const = 0;  // bytes usable for tensors

  // ---- memory and ordering ----
  // Contents are undefined after alloc.
  virtual Tensor alloc(DType dtype, Shape shape) = 0;
  // Copies `src` (exactly dst.nbytes() bytes, in the dtype's host layout) into dst; ordered
  // with the recorded ops; `src` may be freed as soon as upload returns.
  virtual void upload(const Tensor& dst, std::span<const std::byte> src) = 0;
  // Runs everything recorded so far, then copies src's bytes out. Blocking.
  virtual void download(const Tensor& src, std::span<std::byte> dst) = 0;
  // Same dtype and element count (shapes may differ); views allowed.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  // Submits whatever is recorded and waits for it.
  virtual void flush() = 0;

  // ---- profiling ----
  virtual void set_profiling(bool on) = 0;
  // Timings of ops run since the last call (empty when profiling is off).
  virtual std::vector<OpTiming> take_profile() = 0;

  // ---- ops ----
  // y[M,N] = x[M,K] · w[N,K]^T. w: any weight format of engine/core/formats.hpp (K a
  // multiple of its block). M <= 8 takes the matrix-vector (decode) path, larger M the tiled
  // (prefill) path.
  virtual void matmul(const Tensor& x, const Tensor& w, const Tensor& y) = 0;
  // The fused forms below compute exactly what their composition of the ops above computes;
  // the base class composes them (with temporaries from alloc), a backend overrides them to
  // save memory passes and fork/joins.
  // y += x · w^T (a residual add folded into the product). y must not alias x.
  virtual void matmul_add(const Tensor& x, const Tensor& w, const Tensor& y);
  // ys[i] = x · ws[i]^T for every i (one x, several weights: the Q/K/V projections).
  virtual void matmul_many(const Tensor& x, std::span<const Tensor* const> ws,
                           std::span<const Tensor* const> ys);
  // out[M,N] = silu(x · w_gate^T) * (x · w_up^T) (the SwiGLU MLP's first half).
  virtual void matmul_silu_mul(const Tensor& x, const Tensor& w_gate, const Tensor& w_up,
                               const Tensor& out);
  // y[M,K] = x / sqrt(mean(x^2) + eps) * weight[K] (weight f32).
  virtual void rms_norm(const Tensor& x, const Tensor& weight, const Tensor& y, float eps) = 0;
  // y[M,K] = (x - mean(x)) / sqrt(var(x) + eps) * weight[K] + bias[K] (LayerNorm over the
  // last dimension, biased variance, as torch.nn.LayerNorm; weight and bias f32).
  virtual void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& y, float eps) = 0;
  // In place on x[T,H,D] (D even), rotate-half pairing (i, i + D/2), angle
  // positions[t] * theta^(-2i/D) (Llama-3 scaling applied to the frequencies when enabled).
  // positions: i32[T].
  virtual void rope(const Tensor& x, const Tensor& positions, const RopeConfig& cfg) = 0;
  // Causal grouped-query attention over a KV cache.
  //   q[B,T,Hq,D]; k, v[B,L,Hkv,D] (L = cache capacity, Hq % Hkv == 0); out[B,T,Hq,D].
  //   The T new tokens sit at cache rows n_past .. n_past+T-1 (written by kv_write first);
  //   query t attends to rows 0 .. n_past+t, or with window > 0 (sliding-window attention, as
  //   HF's Mistral) to the last `window` of them: rows max(0, n_past+t-window+1) .. n_past+t.
  //   Query head h uses kv head h / (Hq / Hkv). alibi_max_bias > 0 adds Bloom's ALiBi bias
  //   (AlibiSlopes(Hq, alibi_max_bias)) to every score; 0: none.
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                         std::int64_t n_past, float scale, std::int64_t window,
                         float alibi_max_bias) = 0;
  // dst[b, pos + t, ...] = src[b, t, ...] for src[B,T,H,D], dst[B,L,H,D], pos + T <= L.
  virtual void kv_write(const Tensor& src, const Tensor& dst, std::int64_t pos) = 0;
  // The attention's input step for one segment: rope(q) and rope(k) in place (positions
  // i32[B*T], row b*T + t), then kv_write(k, k_cache, pos) and kv_write(v, v_cache, pos), for
  // q[B,T,Hq,D], k and v[B,T,Hkv,D] and caches [B,L,Hkv,D]. A fused form (the composition is the
  // default): one kernel instead of four launches on a GPU.
  virtual void rope_kv_write(const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& positions, const RopeConfig& cfg, const Tensor& k_cache,
                             const Tensor& v_cache, std::int64_t pos);
  // out = silu(gate) * up, all [M,N].
  virtual void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
  // out = gelu(x), same shapes, out may alias x. Gelu::erf: x * (1 + erf(x / sqrt(2))) / 2 (the
  // exact GELU, torch.nn.GELU(), Falcon); Gelu::tanh: x/2 * (1 + tanh(0.79788456 x (1 +
  // 0.044715 x^2))) (Bloom's bloom_gelu_forward).
  virtual void gelu(const Tensor& x, const Tensor& out, Gelu kind) = 0;
  // y[m, :] += bias for y f32[M, N], bias f32[N] (a linear layer's bias, after its product).
  virtual void bias_add(const Tensor& y, const Tensor& bias) = 0;
  // out = a + b, same shapes (out may alias a or b).
  virtual void add(const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // out[T,K] = table[ids[t], :] as f32. ids: i32[T]; table[V,K] in any weight dtype.
  // An id outside [0, V) gives a zero row on the device and throws on the CPU path's check.
  virtual void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) = 0;
  // Row-wise over x[M,N].
  virtual void softmax(const Tensor& x, const Tensor& out) = 0;
  // out i32[M] = index of the largest value in each row (ties: lowest index).
  virtual void argmax(const Tensor& x, const Tensor& out) = 0;
  // hivemind BLOCKWISE_8BIT: blocks of 4096 values; absmax[b] = max |x| over block b;
  // codes[i] = index of the codebook entry nearest to x[i] / absmax[i / 4096]
  // (ties: lower index; absmax 0 -> divide by 1). x f32[N], codebook f32[256] (sorted
  // ascending), absmax f32[ceil(N/4096)], codes u8[N].
  virtual void blockwise8_quantize(const Tensor& x, const Tensor& codebook, const Tensor& absmax,
                                   const Tensor& codes) = 0;
  // out[i] = codebook[codes[i]] * absmax[i / 4096].
  virtual void blockwise8_dequantize(const Tensor& codes, const Tensor& absmax,
                                     const Tensor& codebook, const Tensor& out) = 0;
  // Per row of x[M,N]: the k entries of largest |x|, in descending |x| (ties: lower index).
  // indices i32[M,k], values f32[M,k] (the signed values).
  virtual void topk(const Tensor& x, std::int64_t k, const Tensor& indices,
                    const Tensor& values) = 0;

  // ---- mixture of experts (Mixtral's sparse MLP) ----
  // Per row of logits f32[M,E]: the k experts of largest logit in descending order (ties: lower
  // index) -> ids i32[M,k], and their router weights -> weights f32[M,k]: the softmax over all
  // E logits, taken at the k selected and renormalised to sum 1 (what HF's Mixtral computes).
  virtual void moe_route(const Tensor& logits, std::int64_t k, const Tensor& ids,
                         const Tensor& weights) = 0;
  // out[i,:] = src[idx[i],:] for src f32[R,N], idx i32[n], out f32[n,N]. An index outside
  // [0, R) gives a zero row on the device and throws on the CPU path's check.
  virtual void gather_rows(const Tensor& src, const Tensor& idx, const Tensor& out) = 0;
  // y[idx[i],:] += scale[i] * src[i,:] for src f32[n,N], idx i32[n] (distinct entries),
  // scale f32[n], y f32[R,N]. An index outside [0, R) is skipped on the device and throws on
  // the CPU path's check.
  virtual void scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& scale,
                                const Tensor& y) = 0;
};

// "cpu", "cpu:<kernel table>", "vulkan" (first device), "vulkan:N", or "auto" (the first
// Vulkan device that is not CPU-type — never lavapipe over the CPU backend — else the CPU
// backend, with one log line saying why). Throws std::runtime_error naming the spec on
// failure.
std::unique_ptr<Backend> make_backend(const std::string& spec);

}  // namespace kwaai::engine
