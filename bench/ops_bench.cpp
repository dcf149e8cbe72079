// Google Benchmark cases per op and backend: decode mat-vec per weight dtype at Llama FFN
// shapes, prefill matmul, a few other ops, a host memory-read baseline and a backend copy
// baseline. Counters: GB/s (bytes read + written) and GFLOP/s.
//
//   ops_bench [--kwaai_devices=cpu,vulkan:0] [google benchmark flags]
//
// Iteration time is the backend's own per-op time (GPU timestamps on Vulkan, wall time on
// the CPU), reported through manual timing, so device runs are not charged for host
// submission overhead.
#include <spdlog/spdlog.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/op_cases.hpp"
#include "engine/cpu/cpu_backend.hpp"
#include "engine/cpu/thread_pool.hpp"

namespace {

using kwaai::bench::OpCase;
using kwaai::engine::DType;

std::map<std::string, std::unique_ptr<kwaai::engine::Backend>>& backends() {
  // A Vulkan backend logs (spdlog) if saving its pipeline cache fails while it is destroyed at
  // exit, so spdlog's registry must outlive this cache: touching it first constructs it
  // first, and function statics are destroyed in reverse order of construction.
  static const bool log_first = (spdlog::default_logger_raw(), true);
  (void)log_first;
  static std::map<std::string, std::unique_ptr<kwaai::engine::Backend>> m;
  return m;
}

kwaai::engine::Backend& backend(const std::string& spec) {
  auto& b = backends()[spec];
  if (!b) b = kwaai::engine::make_backend(spec);
  return *b;
}

// Cases are built lazily (on first run) so that filtering with --benchmark_filter does not
// allocate every weight matrix.
using CaseFactory = std::function<OpCase(kwaai::engine::Backend&)>;

void run_case(benchmark::State& state, const std::string& spec, const CaseFactory& make) {
  auto& be = backend(spec);
  const OpCase c = make(be);
  kwaai::bench::time_once(be, c);  // warm-up
  double total = 0;
  for (auto _ : state) {
    const double t = kwaai::bench::time_once(be, c);
    state.SetIterationTime(t);
    total += t;
  }
  // Plain values (not benchmark rates): the counter names already say "per second".
  const double per_run =
      total / static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  state.counters["GB/s"] = c.bytes / per_run / 1e9;
  if (c.flops > 0) state.counters["GFLOP/s"] = c.flops / per_run / 1e9;
  state.SetLabel(be.description());
}

void add(const std::string& spec, const std::string& name, CaseFactory make) {
  benchmark::RegisterBenchmark((spec + "/" + name).c_str(),
                               [spec, make](benchmark::State& s) { run_case(s, spec, make); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

// The int8 dot-product peak of a CPU backend's kernel table on all its threads (the roofline
// of quantized prefill: compare the matmul_q8_0 / matmul_q4_0 prefill rows with it).
void int8_peak(benchmark::State& state, const std::string& spec) {
  auto& be = backend(spec);
  double gops = 0;
  for (auto _ : state) {
    gops = 2.0 * kwaai::engine::cpu_int8_peak(be, 0.2) / 1e9;
    state.SetIterationTime(0.2);
  }
  state.counters["GOP/s"] = gops;
  state.SetLabel(be.description());
}

void register_backend(const std::string& spec) {
  using kwaai::bench::make_matmul_case;
  const DType all[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                       DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  for (DType wt : all) {
    const std::string d(kwaai::engine::dtype_name(wt));
    add(spec, "matvec_" + d + "/1x4096*14336x4096",
        [wt](auto& be) { return make_matmul_case(be, wt, 1, 14336, 4096); });
    add(spec, "matvec_" + d + "/1x14336*4096x14336",
        [wt](auto& be) { return make_matmul_case(be, wt, 1, 4096, 14336); });
  }
  // From memory: 16 distinct 14336x4096 matrices (0.5-1 GB) in a row, as in a decode step.
  for (DType wt : {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
    add(spec, "matvec_stream_" + std::string(kwaai::engine::dtype_name(wt)) + "/16x14336x4096",
        [wt](auto& be) { return kwaai::bench::make_matvec_stream_case(be, wt, 14336, 4096, 16); });
  for (DType wt : {DType::Q8_0, DType::Q4_0, DType::Q4_K})
    add(spec, "matvec_" + std::string(kwaai::engine::dtype_name(wt)) + "/8x4096*14336x4096",
        [wt](auto& be) { return make_matmul_case(be, wt, 8, 14336, 4096); });
  // Cache-resident weights (256 rows, ~1.1 MB q8_0, half per thread in L2): the kernels'
  // compute ceiling, separate from DRAM bandwidth.
  for (DType wt : {DType::F16, DType::Q8_0, DType::Q4_0})
    add(spec, "matvec_" + std::string(kwaai::engine::dtype_name(wt)) + "/1x4096*256x4096_cached",
        [wt](auto& be) { return make_matmul_case(be, wt, 1, 256, 4096); });
  for (DType wt : all)
    add(spec, "matmul_" + std::string(kwaai::engine::dtype_name(wt)) + "/512x4096*4096x4096",
        [wt](auto& be) { return make_matmul_case(be, wt, 512, 4096, 4096); });
  if (spec.rfind("cpu", 0) == 0)
    benchmark::RegisterBenchmark((spec + "/int8_dot_peak").c_str(),
                                 [spec](benchmark::State& st) { int8_peak(st, spec); })
        ->UseManualTime()
        ->Iterations(3)
        ->Unit(benchmark::kMillisecond);
  add(spec, "copy/256MiB", [](auto& be) { return kwaai::bench::make_copy_case(be, 256u << 20); });
  add(spec, "rms_norm/1x4096",
      [](auto& be) { return kwaai::bench::make_rms_norm_case(be, 1, 4096); });
  add(spec, "rms_norm/512x4096",
      [](auto& be) { return kwaai::bench::make_rms_norm_case(be, 512, 4096); });
  add(spec, "attention_decode/32q8kv_d128_L2048",
      [](auto& be) { return kwaai::bench::make_attention_decode_case(be, 32, 8, 128, 2048); });
  add(spec, "silu_mul/14336", [](auto& be) { return kwaai::bench::make_silu_mul_case(be, 14336); });
  add(spec, "blockwise8_quantize/1M",
      [](auto& be) { return kwaai::bench::make_blockwise8_case(be, 1 << 20); });
}

void host_read(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr std::size_t bytes = 256u << 20;
  double gbs = 0;
  for (auto _ : state) {
    gbs = kwaai::bench::host_read_bandwidth(bytes, threads, 3);
    state.SetIterationTime(static_cast<double>(bytes) / (gbs * 1e9));
  }
  state.counters["GB/s"] = gbs;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> specs{"cpu"};
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    constexpr const char* flag = "--kwaai_devices=";
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) {
      specs.clear();
      std::stringstream ss(argv[i] + std::strlen(flag));
      for (std::string s; std::getline(ss, s, ',');)
        if (!s.empty()) specs.push_back(s);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  benchmark::RegisterBenchmark("host/memory_read_256MiB", host_read)
      ->Arg(1)
      ->Arg(kwaai::engine::cpu::physical_core_count())
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  for (const auto& s : specs) register_backend(s);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
