#include "engine/check_backend.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/formats.hpp"

namespace kwaai::engine {

namespace {

// Rows pos .. pos + T of each batch entry of a cache [B,L,...]: what a kv_write wrote (the rest
// of a cache is undefined until written, on each backend).
void add_written_rows(const Tensor& cache, std::int64_t pos, std::int64_t T,
                      std::vector<Tensor>& out) {
  const std::int64_t B = cache.dim(0), L = cache.dim(1);
  for (std::int64_t b = 0; b < B; ++b)
    out.push_back(cache.slice_rows(b, b + 1)
                      .reshaped({L, cache.numel() / std::max<std::int64_t>(1, B * L)})
                      .slice_rows(pos, pos + T));
}

class CheckedBackend final : public Backend {
 public:
  CheckedBackend(std::unique_ptr<Backend> dev, std::unique_ptr<Backend> ref, CheckOptions opt)
      : dev_(std::move(dev)), ref_(std::move(ref)), opt_(opt) {
    spdlog::warn("check mode: every op on {} is rerun on {} and compared (slow)", dev_->name(),
                 ref_->name());
  }

  BackendKind kind() const override { return dev_->kind(); }
  std::string name() const override { return dev_->name(); }
  std::string description() const override {
    return dev_->description() + " [checked against " + ref_->name() + "]";
  }
  std::uint64_t memory_capacity() const override { return dev_->memory_capacity(); }

  Tensor alloc(DType dtype, Shape shape) override {
    Tensor d = dev_->alloc(dtype, shape);
    Tensor r = ref_->alloc(dtype, std::move(shape));
    std::lock_guard lock(mu_);
    if (++allocs_ % 256 == 0)
      for (auto it = mirrors_.begin(); it != mirrors_.end();)
        it = it->second.dev.expired() ? mirrors_.erase(it) : std::next(it);
    mirrors_[d.storage()] = {d.storage_ptr(), r.storage_ptr()};
    return d;
  }
  void upload(const Tensor& dst, std::span<const std::byte> src) override {
    dev_->upload(dst, src);
    ref_->upload(ref(dst), src);
  }
  void download(const Tensor& src, std::span<std::byte> dst) override { dev_->download(src, dst); }
  void copy(const Tensor& src, const Tensor& dst) override {
    ref_->copy(ref(src), ref(dst));
    dev_->copy(src, dst);
    check("copy " + src.describe(), {dst}, false);
  }
  void flush() override { dev_->flush(); }
  void set_profiling(bool on) override { dev_->set_profiling(on); }
  std::vector<OpTiming> take_profile() override { return dev_->take_profile(); }

  void matmul(const Tensor& x, const Tensor& w, const Tensor& y) override {
    ref_->matmul(ref(x), ref(w), ref(y));
    dev_->matmul(x, w, y);
    check("matmul " + x.describe() + " x " + w.describe(), {y}, is_quantized(w.dtype()));
  }
  void matmul_add(const Tensor& x, const Tensor& w, const Tensor& y) override {
    ref_->matmul_add(ref(x), ref(w), ref(y));
    dev_->matmul_add(x, w, y);
    check("matmul_add " + x.describe() + " x " + w.describe(), {y}, is_quantized(w.dtype()));
  }
  void matmul_many(const Tensor& x, std::span<const Tensor* const> ws,
                   std::span<const Tensor* const> ys) override {
    std::vector<Tensor> rw, ry;
    for (const Tensor* w : ws) rw.push_back(ref(*w));
    for (const Tensor* y : ys) ry.push_back(ref(*y));
    std::vector<const Tensor*> pw, py;
    for (const auto& t : rw) pw.push_back(&t);
    for (const auto& t : ry) py.push_back(&t);
    ref_->matmul_many(ref(x), pw, py);
    dev_->matmul_many(x, ws, ys);
    std::vector<Tensor> outs;
    bool quantized = false;
    for (const Tensor* y : ys) outs.push_back(*y);
    for (const Tensor* w : ws) quantized = quantized || is_quantized(w->dtype());
    check("matmul_many " + x.describe() + " x " + std::to_string(ws.size()) + " weights", outs,
          quantized);
  }
  void matmul_silu_mul(const Tensor& x, const Tensor& g, const Tensor& u,
                       const Tensor& out) override {
    ref_->matmul_silu_mul(ref(x), ref(g), ref(u), ref(out));
    dev_->matmul_silu_mul(x, g, u, out);
    check("matmul_silu_mul " + x.describe() + " x " + g.describe(), {out},
          is_quantized(g.dtype()) || is_quantized(u.dtype()));
  }
  void rms_norm(const Tensor& x, const Tensor& w, const Tensor& y, float eps) override {
    ref_->rms_norm(ref(x), ref(w), ref(y), eps);
    dev_->rms_norm(x, w, y, eps);
    check("rms_norm " + x.describe(), {y}, false);
  }
  void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                  float eps) override {
    ref_->layer_norm(ref(x), ref(w), ref(b), ref(y), eps);
    dev_->layer_norm(x, w, b, y, eps);
    check("layer_norm " + x.describe(), {y}, false);
  }
  void gelu(const Tensor& x, const Tensor& out, Gelu kind) override {
    ref_->gelu(ref(x), ref(out), kind);
    dev_->gelu(x, out, kind);
    check("gelu " + x.describe(), {out}, false);
  }
  void bias_add(const Tensor& y, const Tensor& bias) override {
    ref_->bias_add(ref(y), ref(bias));
    dev_->bias_add(y, bias);
    check("bias_add " + y.describe(), {y}, false);
  }
  void rope(const Tensor& x, const Tensor& positions, const RopeConfig& cfg) override {
    ref_->rope(ref(x), ref(positions), cfg);
    dev_->rope(x, positions, cfg);
    check("rope " + x.describe(), {x}, false);
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                 std::int64_t n_past, float scale, std::int64_t window, float alibi) override {
    ref_->attention(ref(q), ref(k), ref(v), ref(out), n_past, scale, window, alibi);
    dev_->attention(q, k, v, out, n_past, scale, window, alibi);
    check("attention " + q.describe() + " past " + std::to_string(n_past), {out}, false);
  }
  void kv_write(const Tensor& src, const Tensor& dst, std::int64_t pos) override {
    ref_->kv_write(ref(src), ref(dst), pos);
    dev_->kv_write(src, dst, pos);
    std::vector<Tensor> written;
    add_written_rows(dst, pos, src.dim(1), written);
    check("kv_write " + src.describe() + " at " + std::to_string(pos), written, false);
  }
  void rope_kv_write(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions,
                     const RopeConfig& cfg, const Tensor& k_cache, const Tensor& v_cache,
                     std::int64_t pos) override {
    ref_->rope_kv_write(ref(q), ref(k), ref(v), ref(positions), cfg, ref(k_cache), ref(v_cache),
                        pos);
    dev_->rope_kv_write(q, k, v, positions, cfg, k_cache, v_cache, pos);
    std::vector<Tensor> outs{q, k};
    add_written_rows(k_cache, pos, k.dim(1), outs);
    add_written_rows(v_cache, pos, v.dim(1), outs);
    check("rope_kv_write " + q.describe() + " at " + std::to_string(pos), outs, false);
  }
  void silu_mul(const Tensor& g, const Tensor& u, const Tensor& out) override {
    ref_->silu_mul(ref(g), ref(u), ref(out));
    dev_->silu_mul(g, u, out);
    check("silu_mul " + g.describe(), {out}, false);
  }
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override {
    ref_->add(ref(a), ref(b), ref(out));
    dev_->add(a, b, out);
    check("add " + a.describe(), {out}, false);
  }
  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override {
    ref_->embedding(ref(ids), ref(table), ref(out));
    dev_->embedding(ids, table, out);
    check("embedding " + table.describe(), {out}, false);
  }
  void softmax(const Tensor& x, const Tensor& out) override {
    ref_->softmax(ref(x), ref(out));
    dev_->softmax(x, out);
    check("softmax " + x.describe(), {out}, false);
  }
  void argmax(const Tensor& x, const Tensor& out) override {
    ref_->argmax(ref(x), ref(out));
    dev_->argmax(x, out);
    check("argmax " + x.describe(), {out}, false);
  }
  void blockwise8_quantize(const Tensor& x, const Tensor& codebook, const Tensor& absmax,
                           const Tensor& codes) override {
    ref_->blockwise8_quantize(ref(x), ref(codebook), ref(absmax), ref(codes));
    dev_->blockwise8_quantize(x, codebook, absmax, codes);
    check("blockwise8_quantize " + x.describe(), {absmax, codes}, false);
  }
  void blockwise8_dequantize(const Tensor& codes, const Tensor& absmax, const Tensor& codebook,
                             const Tensor& out) override {
    ref_->blockwise8_dequantize(ref(codes), ref(absmax), ref(codebook), ref(out));
    dev_->blockwise8_dequantize(codes, absmax, codebook, out);
    check("blockwise8_dequantize " + out.describe(), {out}, false);
  }
  void topk(const Tensor& x, std::int64_t k, const Tensor& indices, const Tensor& values) override {
    ref_->topk(ref(x), k, ref(indices), ref(values));
    dev_->topk(x, k, indices, values);
    check("topk " + x.describe(), {indices, values}, false);
  }
  void moe_route(const Tensor& logits, std::int64_t k, const Tensor& ids,
                 const Tensor& weights) override {
    ref_->moe_route(ref(logits), k, ref(ids), ref(weights));
    dev_->moe_route(logits, k, ids, weights);
    check("moe_route " + logits.describe(), {ids, weights}, false);
  }
  void gather_rows(const Tensor& src, const Tensor& idx, const Tensor& out) override {
    ref_->gather_rows(ref(src), ref(idx), ref(out));
    dev_->gather_rows(src, idx, out);
    check("gather_rows " + out.describe(), {out}, false);
  }
  void scatter_add_rows(const Tensor& src, const Tensor& idx, const Tensor& scale,
                        const Tensor& y) override {
    ref_->scatter_add_rows(ref(src), ref(idx), ref(scale), ref(y));
    dev_->scatter_add_rows(src, idx, scale, y);
    check("scatter_add_rows " + src.describe(), {y}, false);
  }

 private:
  struct Mirror {
    std::weak_ptr<Storage> dev;
    std::shared_ptr<Storage> ref;
  };

  // The reference backend's twin of a device tensor: the same view of the mirrored storage.
  Tensor ref(const Tensor& t) {
    if (!t.defined()) return {};
    std::lock_guard lock(mu_);
    auto it = mirrors_.find(t.storage());
    if (it == mirrors_.end() || it->second.dev.expired())
      throw std::logic_error("check mode: tensor " + t.describe() +
                             " was not allocated through the checked backend");
    return Tensor(it->second.ref, t.dtype(), t.shape(), t.offset());
  }

  // Compares each output of the op just run on both backends; on agreement the reference
  // takes the device's values, so the next op starts from identical inputs.
  void check(const std::string& op, std::initializer_list<Tensor> outs, bool quantized) {
    check(op, std::vector<Tensor>(outs), quantized);
  }
  void check(const std::string& op, const std::vector<Tensor>& outs, bool quantized) {
    const double tol = quantized ? opt_.quantized_tolerance : opt_.tolerance;
    for (const Tensor& out : outs) {
      std::vector<std::byte> d(out.nbytes()), r(out.nbytes());
      dev_->download(out, d);
      const Tensor rt = ref(out);
      ref_->download(rt, r);
      if (out.dtype() == DType::F32) {
        const auto* a = reinterpret_cast<const float*>(d.data());
        const auto* b = reinterpret_cast<const float*>(r.data());
        const std::size_t n = d.size() / 4;
        double diff2 = 0, ref2 = 0, worst = -1;
        std::size_t at = 0, bad_finite = n;
        for (std::size_t i = 0; i < n; ++i) {
          if (std::isfinite(a[i]) != std::isfinite(b[i]) && bad_finite == n) bad_finite = i;
          if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
          const double e = static_cast<double>(a[i]) - b[i];
          diff2 += e * e;
          ref2 += static_cast<double>(b[i]) * b[i];
          if (std::fabs(e) > worst) worst = std::fabs(e), at = i;
        }
        const double rel = std::sqrt(diff2) / std::max(std::sqrt(ref2), 1e-30);
        if (bad_finite < n || (rel > tol && std::sqrt(diff2) > 1e-30)) {
          std::ostringstream m;
          m << "check mode: " << op << " on " << dev_->name() << " differs from " << ref_->name()
            << ": output " << out.describe();
          if (bad_finite < n)
            m << " element " << bad_finite << " is " << a[bad_finite] << ", expected "
              << b[bad_finite];
          else
            m << " relative L2 error " << rel << " > " << tol << ", worst element " << at << ": "
              << a[at] << " vs " << b[at];
          throw std::runtime_error(m.str());
        }
      } else if (d != r) {
        std::size_t i = 0;
        while (i < d.size() && d[i] == r[i]) ++i;
        throw std::runtime_error("check mode: " + op + " on " + dev_->name() + " differs from " +
                                 ref_->name() + ": output " + out.describe() + " byte " +
                                 std::to_string(i) + " differs");
      }
      ref_->upload(rt, d);
    }
  }

  std::unique_ptr<Backend> dev_, ref_;
  CheckOptions opt_;
  std::mutex mu_;
  std::unordered_map<const Storage*, Mirror> mirrors_;
  std::uint64_t allocs_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_checked_backend(std::unique_ptr<Backend> device,
                                              std::unique_ptr<Backend> reference,
                                              CheckOptions opts) {
  return std::make_unique<CheckedBackend>(std::move(device), std::move(reference), opts);
}

}  // namespace kwaai::engine
