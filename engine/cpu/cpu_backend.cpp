// The CPU Backend: 64-byte-aligned host storage, ops run immediately on the calling thread
// plus a small persistent pool, flush() has nothing to wait for.
#include "engine/cpu/cpu_backend.hpp"

#include <sys/mman.h>
#include <sys/sysinfo.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/core/formats.hpp"
#include "engine/core/op_checks.hpp"
#include "engine/cpu/cpu_ops.hpp"
#include "engine/cpu/qpack.hpp"

namespace kwaai::engine {

namespace {

using cpu::Ctx;

// Host memory; block-quantized tensors (formats with cpu_packed) carry the geometry of their
// packed layout (engine/cpu/qpack.hpp), which only whole-tensor views may use.
class HostStorage final : public Storage {
 public:
  explicit HostStorage(std::size_t bytes, std::optional<cpu::PackGeometry> packed = std::nullopt)
      : bytes_(bytes), packed_(packed) {
    // Round up so AVX-512 loads of a whole last cache line stay inside the allocation.
    const std::size_t alloc = (bytes + 63) / 64 * 64 + 64;
    if (alloc >= kHugeMin) {
      // Large tensors (weights, KV caches) on 2 MiB pages where the kernel allows it
      // (transparent huge pages in "madvise" mode are common): a decode step streams every
      // weight byte once, and 4 KiB pages cost a TLB miss and a prefetcher restart per page.
      mapped_ = (alloc + kHuge - 1) / kHuge * kHuge;
      void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      madvise(p, mapped_, MADV_HUGEPAGE);  // advice only; failure leaves 4 KiB pages
      ptr_ = p;
    } else {
      ptr_ = std::aligned_alloc(64, alloc);
      if (!ptr_) throw std::bad_alloc();
    }
  }
  ~HostStorage() override {
    if (mapped_)
      munmap(ptr_, mapped_);
    else
      std::free(ptr_);
  }
  HostStorage(const HostStorage&) = delete;
  HostStorage& operator=(const HostStorage&) = delete;
  std::size_t bytes() const override { return bytes_; }
  std::byte* data() const { return static_cast<std::byte*>(ptr_); }
  const std::optional<cpu::PackGeometry>& packed() const { return packed_; }

 private:
  static constexpr std::size_t kHuge = std::size_t{2} << 20;
  static constexpr std::size_t kHugeMin = std::size_t{4} << 20;
  void* ptr_ = nullptr;
  std::size_t mapped_ = 0;  // bytes mmap'ed (0: aligned_alloc)
  std::size_t bytes_;
  std::optional<cpu::PackGeometry> packed_;
};

// [rows, cols] of a tensor taken as rows of its last dimension.
std::pair<std::int64_t, std::int64_t> rows_cols(const Shape& shape) {
  const std::int64_t cols = shape.empty() ? 1 : shape.back();
  const std::int64_t n = shape_numel(shape);
  return {cols == 0 ? 0 : n / cols, cols};
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, const cpu::KernelTable& kernels)
      : pool_(threads > 0 ? threads : cpu::physical_core_count()),
        kernels_(kernels),
        ctx_{pool_, kernels_} {
    // OpenBLAS runs its own threads for sgemm; match them to ours so the two pools do not
    // oversubscribe the cores.
    openblas_threads(pool_.size());
  }

  BackendKind kind() const override { return BackendKind::Cpu; }
  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return cpu_model_name() + " (" + std::to_string(pool_.size()) + " threads, kernels " +
           kernels_.name + ", OpenBLAS " + openblas_core() + " for f32 weights)";
  }
  std::uint64_t memory_capacity() const override {
    struct sysinfo si {};
    if (sysinfo(&si) != 0) return 0;
    return static_cast<std::uint64_t>(si.totalram) * si.mem_unit;
  }

  Tensor alloc(DType dtype, Shape shape) override {
    for (auto d : shape)
      if (d < 0) checks::fail("alloc", "negative dimension in " + shape_str(shape));
    const std::size_t bytes = dtype_bytes(dtype, shape_numel(shape));
    if (format_info(dtype).cpu_packed) {
      const auto [rows, cols] = rows_cols(shape);
      const cpu::PackGeometry g = cpu::pack_geometry(dtype, rows, cols);
      return Tensor(std::make_shared<HostStorage>(std::max(bytes, g.total_bytes()), g), dtype,
                    std::move(shape));
    }
    return Tensor(std::make_shared<HostStorage>(bytes), dtype, std::move(shape));
  }

  void upload(const Tensor& dst, std::span<const std::byte> src) override {
    checks::host_transfer("upload", dst, src.size());
    if (const cpu::PackGeometry* g = packed(dst, "upload")) {
      cpu::pack_rows(*g, src.data(), ptr(dst, "upload"));
      return;
    }
    if (!src.empty()) std::memcpy(ptr(dst, "upload"), src.data(), src.size());
  }
  void download(const Tensor& src, std::span<std::byte> dst) override {
    checks::host_transfer("download", src, dst.size());
    if (const cpu::PackGeometry* g = packed(src, "download")) {
      cpu::unpack_rows(*g, ptr(src, "download"), dst.data());
      return;
    }
    if (!dst.empty()) std::memcpy(dst.data(), ptr(src, "download"), dst.size());
  }
  void copy(const Tensor& src, const Tensor& dst) override {
    Timer t(this, [&] { return "copy " + src.describe(); });
    checks::copy(src, dst);
    const cpu::PackGeometry* gs = packed(src, "copy");
    const cpu::PackGeometry* gd = packed(dst, "copy");
    if (gs || gd) {
      // Packed layouts are per [rows, cols]: a copy between two such tensors of one geometry is
      // a plain byte copy; any other pairing would have to repack and is refused.
      if (!gs || !gd || gs->rows != gd->rows || gs->cols != gd->cols)
        checks::fail("copy", src.describe() + " -> " + dst.describe() +
                                 ": packed CPU weights copy only to a tensor of the same shape");
      std::memcpy(ptr(dst, "copy"), ptr(src, "copy"), gs->total_bytes());
      return;
    }
    const std::size_t n = src.nbytes();
    std::byte* d = ptr(dst, "copy");
    const std::byte* s = ptr(src, "copy");
    // Overlapping ranges (views of one storage) must be moved in one piece; disjoint ones
    // are split across the pool.
    if (d < s + n && s < d + n) {
      std::memmove(d, s, n);
      return;
    }
    pool_.parallel_for(
        static_cast<std::int64_t>(n),
        [&](std::int64_t b, std::int64_t e) {
          std::memcpy(d + b, s + b, static_cast<std::size_t>(e - b));
        },
        1 << 20);
  }
  void flush() override {}

  void set_profiling(bool on) override {
    std::lock_guard lock(profile_mutex_);
    profiling_ = on;
  }
  std::vector<OpTiming> take_profile() override {
    std::lock_guard lock(profile_mutex_);
    return std::exchange(profile_, {});
  }

  void matmul(const Tensor& x, const Tensor& w, const Tensor& y) override {
    const auto d = checks::matmul(x, w, y);
    Timer t(this, [&] {
      return "matmul " + std::string(dtype_name(w.dtype())) + " " + shape_str({d.M, d.K}) + "x" +
             shape_str(w.shape());
    });
    cpu::matmul(ctx_, f32(x, "matmul"), w.dtype(), weight(w, "matmul"), f32(y, "matmul"), d.M, d.N,
                d.K);
  }
  void matmul_add(const Tensor& x, const Tensor& w, const Tensor& y) override {
    const auto d = checks::matmul(x, w, y);
    Timer t(this, [&] {
      return "matmul_add " + std::string(dtype_name(w.dtype())) + " " + shape_str({d.M, d.K}) +
             "x" + shape_str(w.shape());
    });
    cpu::matmul(ctx_, f32(x, "matmul_add"), w.dtype(), weight(w, "matmul_add"),
                f32(y, "matmul_add"), d.M, d.N, d.K, true);
  }
  void matmul_many(const Tensor& x, std::span<const Tensor* const> ws,
                   std::span<const Tensor* const> ys) override {
    if (ws.size() != ys.size())
      checks::fail("matmul_many", std::to_string(ws.size()) + " weights for " +
                                      std::to_string(ys.size()) + " outputs");
    if (ws.empty()) return;
    std::vector<cpu::MatmulPart> parts;
    std::string shapes;
    checks::MatmulDims d{};
    for (std::size_t i = 0; i < ws.size(); ++i) {
      d = checks::matmul(x, *ws[i], *ys[i]);
      parts.push_back(
          {ws[i]->dtype(), weight(*ws[i], "matmul_many"), f32(*ys[i], "matmul_many"), d.N});
      if (i) shapes += ',';
      shapes += shape_str(ws[i]->shape());
    }
    // The kind (before the first shape) says how many products it is: "matmul_many q8_0 x3".
    Timer t(this, [&] {
      return "matmul_many " + std::string(dtype_name(ws[0]->dtype())) + " x" +
             std::to_string(ws.size()) + " " + shape_str({d.M, d.K}) + "x" + shapes;
    });
    cpu::matmul_many(ctx_, f32(x, "matmul_many"), d.M, d.K, parts, false);
  }
  void matmul_silu_mul(const Tensor& x, const Tensor& w_gate, const Tensor& w_up,
                       const Tensor& out) override {
    const auto d = checks::matmul(x, w_gate, out);
    checks::matmul(x, w_up, out);
    Timer t(this, [&] {
      return "matmul_silu_mul " + std::string(dtype_name(w_gate.dtype())) + " " +
             shape_str({d.M, d.K}) + "x" + shape_str(w_gate.shape()) + "x2";
    });
    const char* op = "matmul_silu_mul";
    cpu::matmul_silu_mul(ctx_, f32(x, op), d.M, d.K,
                         {w_gate.dtype(), weight(w_gate, op), nullptr, d.N},
                         {w_up.dtype(), weight(w_up, op), nullptr, d.N}, f32(out, op));
  }
  void rms_norm(const Tensor& x, const Tensor& weight, const Tensor& y, float eps) override {
    const auto d = checks::rms_norm(x, weight, y);
    Timer t(this, [&] { return "rms_norm " + x.describe(); });
    cpu::rms_norm(ctx_, f32(x, "rms_norm"), f32(weight, "rms_norm"), f32(y, "rms_norm"), d.rows,
                  d.cols, eps);
  }
  void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                  float eps) override {
    const auto d = checks::layer_norm(x, weight, bias, y);
    Timer t(this, [&] { return "layer_norm " + x.describe(); });
    const char* op = "layer_norm";
    cpu::layer_norm(ctx_, f32(x, op), f32(weight, op), f32(bias, op), f32(y, op), d.rows, d.cols,
                    eps);
  }
  void gelu(const Tensor& x, const Tensor& out, Gelu kind) override {
    const auto n = checks::gelu(x, out);
    Timer t(this, [&] { return "gelu " + x.describe(); });
    cpu::gelu(ctx_, f32(x, "gelu"), f32(out, "gelu"), n, kind);
  }
  void bias_add(const Tensor& y, const Tensor& bias) override {
    const auto d = checks::bias_add(y, bias);
    Timer t(this, [&] { return "bias_add " + y.describe(); });
    cpu::bias_add(ctx_, f32(y, "bias_add"), f32(bias, "bias_add"), d.rows, d.cols);
  }
  void rope(const Tensor& x, const Tensor& positions, const RopeConfig& cfg) override {
    const auto d = checks::rope(x, positions);
    Timer t(this, [&] { return "rope " + x.describe(); });
    cpu::rope(ctx_, f32(x, "rope"), i32(positions, "rope"), d.T, d.H, d.D, cfg);
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                 std::int64_t n_past, float scale, std::int64_t window,
                 float alibi_max_bias) override {
    const auto d = checks::attention(q, k, v, out, n_past, window);
    Timer t(this, [&] { return "attention " + q.describe() + " past " + std::to_string(n_past); });
    cpu::attention(ctx_, f32(q, "attention"), f32(k, "attention"), f32(v, "attention"),
                   f32(out, "attention"), d.B, d.T, d.Hq, d.Hkv, d.D, d.L, n_past, scale, window,
                   AlibiSlopes(d.Hq, alibi_max_bias));
  }
  void kv_write(const Tensor& src, const Tensor& dst, std::int64_t pos) override {
    const auto d = checks::kv_write(src, dst, pos);
    Timer t(this, [&] { return "kv_write " + src.describe(); });
    const std::size_t row = dtype_bytes(src.dtype(), d.row_elems);
    const std::byte* s = ptr(src, "kv_write");
    std::byte* o = ptr(dst, "kv_write");
    for (std::int64_t b = 0; b < d.B; ++b)
      std::memmove(o + static_cast<std::size_t>(b * d.L + pos) * row,
                   s + static_cast<std::size_t>(b * d.T) * row,
                   static_cast<std::size_t>(d.T) * row);
  }
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) override {
    const auto n = checks::silu_mul(gate, up, out);
    Timer t(this, [&] { return "silu_mul " + gate.describe(); });
    cpu::silu_mul(ctx_, f32(gate, "silu_mul"), f32(up, "silu_mul"), f32(out, "silu_mul"), n);
  }
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override {
    const auto n = checks::add(a, b, out);
    Timer t(this, [&] { return "add " + a.describe(); });
    cpu::add(ctx_, f32(a, "add"), f32(b, "add"), f32(out, "add"), n);
  }
  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override {
    const auto d = checks::embedding(ids, table, out);
    Timer t(this, [&] { return "embedding " + table.describe(); });
    const std::int32_t* id = i32(ids, "embedding");
    // Check every id before writing anything, so a bad request leaves `out` untouched.
    for (std::int64_t i = 0; i < d.T; ++i)
      if (id[i] < 0 || id[i] >= d.V)
        throw std::out_of_range("embedding: token id " + std::to_string(id[i]) + " at position " +
                                std::to_string(i) + " is outside [0, " + std::to_string(d.V) +
                                ") of table " + table.describe());
    const std::byte* tab = static_cast<const std::byte*>(weight(table, "embedding"));
    float* o = f32(out, "embedding");
    if (const cpu::PackGeometry* g = packed(table, "embedding")) {
      for (std::int64_t i = 0; i < d.T; ++i) cpu::packed_row_to_f32(*g, tab, id[i], o + i * d.K);
      return;
    }
    const std::size_t row = dtype_bytes(table.dtype(), d.K);
    for (std::int64_t i = 0; i < d.T; ++i)
      to_f32(table.dtype(), tab + static_cast<std::size_t>(id[i]) * row, o + i * d.K, d.K);
  }
  void softmax(const Tensor& x, const Tensor& out) override {
    const auto d = checks::softmax(x, out);
    Timer t(this, [&] { return "softmax " + x.describe(); });
    cpu::softmax(ctx_, f32(x, "softmax"), f32(out, "softmax"), d.rows, d.cols);
  }
  void argmax(const Tensor& x, const Tensor& out) override {
    const auto d = checks::argmax(x, out);
    Timer t(this, [&] { return "argmax " + x.describe(); });
    cpu::argmax(ctx_, f32(x, "argmax"), i32(out, "argmax"), d.rows, d.cols);
  }
  void blockwise8_quantize(const Tensor& x, const Tensor& codebook, const Tensor& absmax,
                           const Tensor& codes) override {
    const auto n = checks::blockwise8_quantize(x, codebook, absmax, codes);
    Timer t(this, [&] { return "blockwise8_quantize " + x.describe(); });
    const char* op = "blockwise8_quantize";
    cpu::blockwise8_quantize(ctx_, f32(x, op), f32(codebook, op), f32(absmax, op),
                             reinterpret_cast<std::uint8_t*>(ptr(codes, op)), n);
  }
  void blockwise8_dequantize(const Tensor& codes, const Tensor& absmax, const Tensor& codebook,
                             const Tensor& out) override {
    const auto n = checks::blockwise8_dequantize(codes, absmax, codebook, out);
    Timer t(this, [&] { return "blockwise8_dequantize " + out.describe(); });
    const char* op = "blockwise8_dequantize";
    cpu::blockwise8_dequantize(ctx_, reinterpret_cast<const std::uint8_t*>(ptr(codes, op)),
                               f32(absmax, op), f32(codebook, op), f32(out, op), n);
  }
  void topk(const Tensor& x, std::int64_t k, const Tensor& indices, const Tensor& values) override {
    const auto d = checks::topk(x, k, indices, values);
    Timer t(this, [&] { return "topk " + x.describe() + " k " + std::to_string(k); });
    cpu::topk(ctx_, f32(x, "topk"), d.rows, d.cols, k, i32(indices, "topk"), f32(values, "topk"));
  }
  void moe_route(const Tensor& logits, std::int64_t k, const Tensor& ids,
                 const Tensor& weights) override {
    const auto d = checks::moe_route(logits, k, ids, weights);
    Timer t(this, [&] { return "moe_route " + logits.describe() + " k " + std::to_string(k); });
    const char* op = "moe_route";
    cpu::moe_route(ctx_, f32(logits, op), d.rows, d.cols, k, i32(ids, op), f32(weights, op));
  }
  void gather_rows(const Tensor& src, const Tensor& idx, const Tensor& out) override {
    const auto d = checks::gather_rows(src, idx, out);
    Timer t(this, [&] { return "gather_rows " + out.describe(); });
    const char* op = "gather_rows";
    const std::int32_t* id = i32(idx, op);
    check_row_indices(op, id, d, src);
    cpu::gather_rows(f32(src, op), id, f32(out, op), d.n, d.cols);
  }
  void scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& scale,
                        const Tensor& y) override {
    const auto d = checks::scatter_add_rows(src, idx, scale, y);
    Timer t(this, [&] { return "scatter_add_rows " + src.describe(); });
    const char* op = "scatter_add_rows";
    const std::int32_t* id = i32(idx, op);
    check_row_indices(op, id, d, y);
    cpu::scatter_add_rows(f32(src, op), id, f32(scale, op), f32(y, op), d.n, d.cols);
  }

 private:
  // Every index is checked before anything is written, so a bad call leaves the output as it
  // was.
  static void check_row_indices(const char* op, const std::int32_t* id,
                                const checks::RowMoveDims& d, const Tensor& indexed) {
    for (std::int64_t i = 0; i < d.n; ++i)
      if (id[i] < 0 || id[i] >= d.rows)
        throw std::out_of_range(std::string(op) + ": row index " + std::to_string(id[i]) + " at " +
                                std::to_string(i) + " is outside [0, " + std::to_string(d.rows) +
                                ") of " + indexed.describe());
  }
  // Wall time of one op, recorded when profiling is on (the label is built only then).
  class Timer {
   public:
    template <class Label>
    Timer(CpuBackend* b, Label&& label) : b_(b) {
      if (b_->profiling_) {
        label_ = label();
        start_ = std::chrono::steady_clock::now();
      }
    }
    ~Timer() {
      if (label_.empty()) return;
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      std::lock_guard lock(b_->profile_mutex_);
      b_->profile_.push_back({std::move(label_), s});
    }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

   private:
    CpuBackend* b_;
    std::string label_;
    std::chrono::steady_clock::time_point start_;
  };

  static std::byte* ptr(const Tensor& t, const char* op) {
    auto* s = dynamic_cast<HostStorage*>(t.storage());
    if (!s) checks::fail(op, "tensor " + t.describe() + " was not allocated by the CPU backend");
    return s->data() + t.offset();
  }
  // The packed geometry of t when its storage is packed; such a tensor may only be used whole
  // and with the shape it was allocated with (its layout is per [rows, cols]).
  static const cpu::PackGeometry* packed(const Tensor& t, const char* op) {
    auto* s = dynamic_cast<HostStorage*>(t.storage());
    if (!s || !s->packed()) return nullptr;
    const cpu::PackGeometry& g = *s->packed();
    const auto [rows, cols] = rows_cols(t.shape());
    if (t.offset() != 0 || t.dtype() != g.dtype || rows != g.rows || cols != g.cols)
      checks::fail(op, "tensor " + t.describe() + " is a view of a packed " +
                           std::string(dtype_name(g.dtype)) + "[" + std::to_string(g.rows) + ", " +
                           std::to_string(g.cols) + "] CPU weight; packed weights are used whole");
    return &g;
  }
  // A weight operand: its bytes in the layout the kernels expect (packed or rows).
  static const void* weight(const Tensor& t, const char* op) {
    packed(t, op);
    return ptr(t, op);
  }
  static float* f32(const Tensor& t, const char* op) {
    return reinterpret_cast<float*>(ptr(t, op));
  }
  static std::int32_t* i32(const Tensor& t, const char* op) {
    return reinterpret_cast<std::int32_t*>(ptr(t, op));
  }
  static void openblas_threads(int n);
  static std::string openblas_core();

  friend double kwaai::engine::cpu_int8_peak(Backend& be, double seconds);

  cpu::ThreadPool pool_;
  const cpu::KernelTable& kernels_;
  Ctx ctx_;
  std::mutex profile_mutex_;
  bool profiling_ = false;
  std::vector<OpTiming> profile_;
};

}  // namespace
}  // namespace kwaai::engine

#include <cblas.h>

namespace kwaai::engine {
namespace {
void CpuBackend::openblas_threads(int n) {
  openblas_set_num_threads(n);
}
std::string CpuBackend::openblas_core() {
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
}
}  // namespace

CpuBackendInfo cpu_backend_info() {
  CpuBackendInfo info;
  info.kernels = cpu::best_kernels().name;
  for (const char* n : {"avx512-vnni", "avx-vnni", "avx2", "scalar"})
    if (cpu::kernels_by_name(n)) info.runnable.emplace_back(n);
  const char* core = openblas_get_corename();
  info.openblas_core = core ? core : "unknown";
  return info;
}

double cpu_int8_peak(Backend& be, double seconds) {
  auto* cpu = dynamic_cast<CpuBackend*>(&be);
  if (!cpu) return 0.0;
  const cpu::KernelTable& k = cpu->kernels_;
  // Calibrate the round count on one thread, then run every thread for ~`seconds`.
  std::int32_t sink = 0;
  std::int64_t iters = 1 << 12;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    k.int8_peak_loop(iters, &sink);
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (t > seconds / 8 || iters > (std::int64_t{1} << 40)) {
      iters = static_cast<std::int64_t>(static_cast<double>(iters) * seconds / t) + 1;
      break;
    }
    iters *= 4;
  }
  const int n = cpu->pool_.size();
  std::vector<std::int64_t> macs(static_cast<std::size_t>(n));
  std::vector<std::int32_t> sinks(static_cast<std::size_t>(n));
  const auto t0 = std::chrono::steady_clock::now();
  cpu->pool_.parallel_for(n, [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i)
      macs[static_cast<std::size_t>(i)] =
          k.int8_peak_loop(iters, &sinks[static_cast<std::size_t>(i)]);
  });
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  for (auto m : macs) total += static_cast<double>(m);
  return t > 0 ? total / t : 0.0;
}

std::unique_ptr<Backend> make_cpu_backend(int threads, const std::string& kernels) {
  const cpu::KernelTable* table =
      kernels.empty() ? &cpu::best_kernels() : cpu::kernels_by_name(kernels.c_str());
  if (!table)
    throw std::invalid_argument("cpu backend: kernel table '" + kernels +
                                "' does not exist or this CPU cannot run it (scalar, avx2, "
                                "avx-vnni, avx512-vnni)");
  return std::make_unique<CpuBackend>(threads, *table);
}

}  // namespace kwaai::engine
