// Internal declaration of the Vulkan Backend (not part of the engine's public face). The op
// implementations are split by concern over several .cpp files; this header is what they
// share: tensor storage, buffer views with their in-shader base offsets, dispatch grids.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "engine/core/backend.hpp"
#include "runtime/context.hpp"
#include "runtime/stream.hpp"

namespace kwaai::engine::vulkan {

// Allocations whose tensors died while recorded work may still use them. They are released
// after the next completed submission, never earlier (freeing a block under a pending
// command buffer would be a use-after-free on the device). Shared by the backend and every
// storage, and it co-owns the Context, so tensors may outlive the backend: once the backend
// is gone (its Stream waited for all submitted work) a dying tensor frees its range at once.
struct Graveyard {
  explicit Graveyard(std::shared_ptr<runtime::Context> c) : ctx(std::move(c)) {}
  std::shared_ptr<runtime::Context> ctx;  // declared first: outlives `pending`
  std::mutex mu;
  bool backend_alive = true;
  std::vector<runtime::Allocation> pending;

  void bury(runtime::Allocation a) {
    std::lock_guard lock(mu);
    if (backend_alive) pending.push_back(std::move(a));
    // else: `a` is freed on return; nothing can be in flight any more.
  }
  void release() {
    std::vector<runtime::Allocation> dead;
    std::lock_guard lock(mu);
    dead.swap(pending);
  }
  void backend_gone() {
    std::vector<runtime::Allocation> dead;
    std::lock_guard lock(mu);
    backend_alive = false;
    dead.swap(pending);
  }
};

class VulkanStorage final : public Storage {
 public:
  VulkanStorage(runtime::Allocation a, std::size_t bytes, std::shared_ptr<Graveyard> g)
      : alloc_(std::move(a)), bytes_(bytes), graveyard_(std::move(g)) {}
  ~VulkanStorage() override { graveyard_->bury(std::move(alloc_)); }
  std::size_t bytes() const override { return bytes_; }
  const runtime::Allocation& allocation() const { return alloc_; }
  // Identifies the owning backend (each has its own graveyard): tensors of another backend
  // live on another VkDevice and must not be bound here.
  const Graveyard* owner() const { return graveyard_.get(); }

 private:
  runtime::Allocation alloc_;
  std::size_t bytes_;
  std::shared_ptr<Graveyard> graveyard_;
};

// A bindable window over (part of) a tensor: `ref` starts at an offset aligned for storage
// buffer descriptors, and `base` is where the wanted bytes start inside it, in the shader's
// unit (words, halves or bytes).
struct View {
  runtime::BufferRef ref;
  std::uint32_t base = 0;
};

struct Grid {
  std::uint32_t x = 1, y = 1;
};

// Knobs for tests and benchmarks; make_vulkan_backend() uses the defaults.
struct VulkanBackendOptions {
  // Use the subgroup kernel variants where the device supports them. Off forces the
  // shared-memory variants (so tests cover both on a device that has subgroups).
  bool use_subgroups = true;
  // Decode mat-vec shape; 0 = chosen from the device class (see matvec_shape()).
  std::uint32_t matvec_threads = 0;
  std::uint32_t matvec_rows = 0;
  // Prefill matmul tile (kernels/matmul.comp); 0 = chosen by matmul_tile().
  std::uint32_t matmul_tile = 0;
  std::uint32_t matmul_block = 0;
};

// Workgroup size and output rows per workgroup of the decode mat-vec (kernels/matvec.comp),
// a function of the device's class: subgroup width, CPU-type or not.
struct MatvecShape {
  std::uint32_t threads = 64;
  std::uint32_t rows = 2;
};
MatvecShape matvec_shape(const runtime::DeviceCaps& caps, const VulkanBackendOptions& o);

// Output tile side (activation rows x weight rows) and register block side of the tiled prefill
// matmul (kernels/matmul.comp): (tile / block)^2 threads, 2 * tile * 33 floats of shared memory.
struct MatmulTile {
  std::uint32_t tile = 64;
  std::uint32_t block = 4;
  std::uint32_t threads() const { return (tile / block) * (tile / block); }
  std::uint32_t shared_bytes() const { return 2 * tile * 33 * 4; }
};
// The table of tile shapes by device class, for a product of M activation rows and N weight
// rows (options override it; a tile that is not a multiple of its block is refused with
// std::invalid_argument). A shape the device's limits cannot hold takes a larger block (too many
// threads) or a smaller tile (too much shared memory) until it fits.
MatmulTile matmul_tile(const runtime::DeviceCaps& caps, const VulkanBackendOptions& o,
                       std::int64_t M, std::int64_t N);

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(runtime::ContextOptions opts, VulkanBackendOptions vopts = {});
  ~VulkanBackend() override;

  BackendKind kind() const override { return BackendKind::Vulkan; }
  std::string name() const override;
  std::string description() const override;
  std::uint64_t memory_capacity() const override;

  Tensor alloc(DType dtype, Shape shape) override;
  void upload(const Tensor& dst, std::span<const std::byte> src) override;
  void download(const Tensor& src, std::span<std::byte> dst) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void flush() override;

  void set_profiling(bool on) override;
  std::vector<OpTiming> take_profile() override;

  void matmul(const Tensor& x, const Tensor& w, const Tensor& y) override;
  void matmul_add(const Tensor& x, const Tensor& w, const Tensor& y) override;
  void matmul_silu_mul(const Tensor& x, const Tensor& w_gate, const Tensor& w_up,
                       const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, const Tensor& y, float eps) override;
  void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                  float eps) override;
  void rope(const Tensor& x, const Tensor& positions, const RopeConfig& cfg) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                 std::int64_t n_past, float scale, std::int64_t window,
                 float alibi_max_bias) override;
  void kv_write(const Tensor& src, const Tensor& dst, std::int64_t pos) override;
  void rope_kv_write(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions,
                     const RopeConfig& cfg, const Tensor& k_cache, const Tensor& v_cache,
                     std::int64_t pos) override;
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) override;
  void gelu(const Tensor& x, const Tensor& out, Gelu kind) override;
  void bias_add(const Tensor& y, const Tensor& bias) override;
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override;
  void softmax(const Tensor& x, const Tensor& out) override;
  void argmax(const Tensor& x, const Tensor& out) override;
  void blockwise8_quantize(const Tensor& x, const Tensor& codebook, const Tensor& absmax,
                           const Tensor& codes) override;
  void blockwise8_dequantize(const Tensor& codes, const Tensor& absmax, const Tensor& codebook,
                             const Tensor& out) override;
  void topk(const Tensor& x, std::int64_t k, const Tensor& indices, const Tensor& values) override;
  void moe_route(const Tensor& logits, std::int64_t k, const Tensor& ids,
                 const Tensor& weights) override;
  void gather_rows(const Tensor& src, const Tensor& idx, const Tensor& out) override;
  void scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& scale,
                        const Tensor& y) override;

  runtime::Context& context() { return *ctx_; }

 private:
  // Window over bytes [begin, begin + len) of tensor t, base in units of `unit` bytes.
  // Throws std::length_error (naming `op` and maxStorageBufferRange) if it cannot be bound.
  View view(const char* op, const Tensor& t, std::size_t begin, std::size_t len,
            std::size_t unit) const;
  View whole(const char* op, const Tensor& t, std::size_t unit) const {
    return view(op, t, 0, t.nbytes(), unit);
  }
  // Largest byte window one binding may take after alignment slack (also kept below 1 GiB so
  // byte offsets inside kernels fit 32 bits).
  std::size_t max_window() const;
  // Rows of `row_bytes` per dispatch window for ops that split big weights by rows.
  std::int64_t rows_per_window(const char* op, std::size_t row_bytes) const;
  // Spreads `groups` workgroups over x and y within maxComputeWorkGroupCount.
  Grid grid(const char* op, std::uint64_t groups) const;
  runtime::Pipeline& pipeline(const std::string& name, std::uint32_t wg = 0,
                              std::uint32_t spec1 = 0, bool has_spec1 = false);
  // Spec constants 0, 1, 2, ... = values.
  runtime::Pipeline& pipeline_spec(const std::string& name,
                                   std::initializer_list<std::uint32_t> values);
  // The product x · w^T (+ y when accumulate) and, with w_up, silu(x · w^T) * (x · w_up^T):
  // matmul, matmul_add and matmul_silu_mul share it.
  void linear(const char* op, const Tensor& x, const Tensor& w, const Tensor* w_up, const Tensor& y,
              bool accumulate);
  void dispatch(runtime::Pipeline& p, std::initializer_list<runtime::Binding> b,
                std::span<const std::byte> push, Grid g, const std::string& label);
  // Device buffer of Llama-3-scaled RoPE inverse frequencies for (cfg, D), computed once.
  const Tensor& rope_inv_freq(const RopeConfig& cfg, std::int64_t D);
  void finish_submission();

  std::shared_ptr<runtime::Context> ctx_;
  std::unique_ptr<runtime::Stream> stream_;
  std::shared_ptr<Graveyard> graveyard_;
  bool profiling_ = false;
  bool subgroup_matvec_ = false;
  bool fused_rope_kv_ = false;  // rope_kv_f32 usable (7 storage buffers per stage)
  MatvecShape mv_;
  VulkanBackendOptions opts_;
  std::vector<OpTiming> profile_;
  std::map<std::tuple<float, float, float, float, std::int64_t, std::int64_t>, Tensor> rope_cache_;
};

}  // namespace kwaai::engine::vulkan
