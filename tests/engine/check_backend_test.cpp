// Check mode (engine/check_backend.hpp) as a decorator: against a faithful device it changes
// nothing, against a device with one wrong op it stops at that op and names it.
#include "engine/check_backend.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.hpp"

namespace kwaai::engine {
namespace {

// A CPU backend whose add() is off by `error` in its first output element: the kind of
// one-op device bug check mode exists to find.
class OneWrongOp final : public Backend {
 public:
  explicit OneWrongOp(float error) : inner_(make_cpu_backend()), error_(error) {}
  BackendKind kind() const override { return inner_->kind(); }
  std::string name() const override { return "faulty"; }
  std::string description() const override { return "faulty cpu"; }
  std::uint64_t memory_capacity() const override { return inner_->memory_capacity(); }
  Tensor alloc(DType d, Shape s) override { return inner_->alloc(d, std::move(s)); }
  void upload(const Tensor& t, std::span<const std::byte> b) override { inner_->upload(t, b); }
  void download(const Tensor& t, std::span<std::byte> b) override { inner_->download(t, b); }
  void copy(const Tensor& a, const Tensor& b) override { inner_->copy(a, b); }
  void flush() override {}
  void set_profiling(bool on) override { inner_->set_profiling(on); }
  std::vector<OpTiming> take_profile() override { return inner_->take_profile(); }
  void matmul(const Tensor& x, const Tensor& w, const Tensor& y) override {
    inner_->matmul(x, w, y);
  }
  void rms_norm(const Tensor& x, const Tensor& w, const Tensor& y, float e) override {
    inner_->rms_norm(x, w, y, e);
  }
  void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                  float e) override {
    inner_->layer_norm(x, w, b, y, e);
  }
  void gelu(const Tensor& x, const Tensor& o, Gelu g) override { inner_->gelu(x, o, g); }
  void bias_add(const Tensor& y, const Tensor& b) override { inner_->bias_add(y, b); }
  void rope(const Tensor& x, const Tensor& p, const RopeConfig& c) override {
    inner_->rope(x, p, c);
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                 std::int64_t n_past, float s, std::int64_t w, float a) override {
    inner_->attention(q, k, v, o, n_past, s, w, a);
  }
  void kv_write(const Tensor& s, const Tensor& d, std::int64_t p) override {
    inner_->kv_write(s, d, p);
  }
  void silu_mul(const Tensor& g, const Tensor& u, const Tensor& o) override {
    inner_->silu_mul(g, u, o);
  }
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override {
    inner_->add(a, b, out);
    std::vector<float> v(static_cast<std::size_t>(out.numel()));
    inner_->download(out, std::as_writable_bytes(std::span(v)));
    v[0] += error_;
    inner_->upload(out, std::as_bytes(std::span(v)));
  }
  void embedding(const Tensor& i, const Tensor& t, const Tensor& o) override {
    inner_->embedding(i, t, o);
  }
  void softmax(const Tensor& x, const Tensor& o) override { inner_->softmax(x, o); }
  void argmax(const Tensor& x, const Tensor& o) override { inner_->argmax(x, o); }
  void blockwise8_quantize(const Tensor& x, const Tensor& c, const Tensor& a,
                           const Tensor& q) override {
    inner_->blockwise8_quantize(x, c, a, q);
  }
  void blockwise8_dequantize(const Tensor& q, const Tensor& a, const Tensor& c,
                             const Tensor& o) override {
    inner_->blockwise8_dequantize(q, a, c, o);
  }
  void topk(const Tensor& x, std::int64_t k, const Tensor& i, const Tensor& v) override {
    inner_->topk(x, k, i, v);
  }
  void moe_route(const Tensor& l, std::int64_t k, const Tensor& i, const Tensor& w) override {
    inner_->moe_route(l, k, i, w);
  }
  void gather_rows(const Tensor& s, const Tensor& i, const Tensor& o) override {
    inner_->gather_rows(s, i, o);
  }
  void scatter_add_rows(const Tensor& s, const Tensor& i, const Tensor& c,
                        const Tensor& y) override {
    inner_->scatter_add_rows(s, i, c, y);
  }

 private:
  std::unique_ptr<Backend> inner_;
  float error_;
};

std::vector<float> random(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor upload(Backend& be, DType t, Shape s, const std::vector<float>& v) {
  Tensor x = be.alloc(t, std::move(s));
  std::vector<std::byte> bytes(dtype_bytes(t, x.numel()));
  from_f32(t, v.data(), bytes.data(), x.numel());
  be.upload(x, bytes);
  return x;
}

// A few ops of a block on the checked backend: q8_0 and f16 products, the fused forms, a norm
// and an add (the faulty op).
void run_ops(Backend& be) {
  const Tensor x = upload(be, DType::F32, {3, 64}, random(192, 1));
  const Tensor w8 = upload(be, DType::Q8_0, {32, 64}, random(2048, 2));
  const Tensor wh = upload(be, DType::F16, {32, 64}, random(2048, 3));
  const Tensor norm = upload(be, DType::F32, {64}, random(64, 4));
  const Tensor y = be.alloc(DType::F32, {3, 32}), z = be.alloc(DType::F32, {3, 32});
  const Tensor n = be.alloc(DType::F32, {3, 64});
  be.rms_norm(x, norm, n, 1e-5f);
  be.matmul(n, w8, y);
  be.matmul_silu_mul(n, wh, w8, z);
  const Tensor* ws[] = {&w8, &wh};
  const Tensor* ys[] = {&y, &z};
  be.matmul_many(n, ws, ys);
  be.add(y, z, y);
  be.flush();
}

TEST(CheckBackend, AFaithfulDeviceRunsThroughUnchanged) {
  auto checked = make_checked_backend(make_cpu_backend(0, "avx2"), make_cpu_backend());
  EXPECT_NE(checked->description().find("checked against"), std::string::npos);
  EXPECT_NO_THROW(run_ops(*checked));
}

TEST(CheckBackend, StopsAtTheFirstOpThatDiffersAndNamesIt) {
  auto checked = make_checked_backend(std::make_unique<OneWrongOp>(0.5f), make_cpu_backend());
  try {
    run_ops(*checked);
    FAIL() << "the wrong add went unnoticed";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("check mode: add ", 0), 0u) << m;
    EXPECT_NE(m.find("faulty"), std::string::npos) << m;
    EXPECT_NE(m.find("worst element 0"), std::string::npos) << m;
  }
  // An error below the tolerance passes.
  auto lenient = make_checked_backend(std::make_unique<OneWrongOp>(1e-7f), make_cpu_backend());
  EXPECT_NO_THROW(run_ops(*lenient));
}

TEST(CheckBackend, RefusesTensorsItDidNotAllocate) {
  auto cpu = make_cpu_backend();
  auto checked = make_checked_backend(make_cpu_backend(), make_cpu_backend());
  const Tensor foreign = cpu->alloc(DType::F32, {4});
  const Tensor mine = checked->alloc(DType::F32, {4});
  EXPECT_THROW(checked->add(foreign, mine, mine), std::logic_error);
}

}  // namespace
}  // namespace kwaai::engine
