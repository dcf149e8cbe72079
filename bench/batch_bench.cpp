// Decode tokens/s of N concurrent sessions on one span, stepped one by one (InferenceSession::step
// per session) versus together (step_batch: one weight read per block for all N rows).
//
//   batch_bench [--kwaai_devices=cpu,vulkan] [google benchmark flags]
//
// The span is 2 blocks of a llama-3-8b-shaped model with random Q8_0 weights (SyntheticSource).
// Every session has batch 1 and decodes one token per iteration; the position cycles through
// 0..31 by rolling back (start_from_position), so the attention context stays short and the
// numbers measure the weight-bound part of decode. Time is wall time per iteration (each
// iteration ends with the outputs downloaded to the host); the counter is tokens/s over all
// sessions.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/llama/llama_config.hpp"
#include "engine/llama/session.hpp"
#include "engine/llama/synthetic_source.hpp"

namespace {

using namespace kwaai::engine;
using namespace kwaai::engine::llama;
using namespace std::chrono_literals;

constexpr std::int64_t kLayers = 2, kMaxLength = 64, kCycle = 32;

// One span per device, built on first use and kept for every case.
struct Span {
  std::unique_ptr<Backend> be;
  std::unique_ptr<SyntheticSource> src;
  std::unique_ptr<SpanExecutor> exec;
};

Span& span_for(const std::string& spec) {
  static std::map<std::string, Span> spans;
  Span& s = spans[spec];
  if (!s.exec) {
    ModelConfig cfg = known_config("llama-3-8b");
    cfg.layers = kLayers;
    s.be = make_backend(spec);
    s.src = std::make_unique<SyntheticSource>(cfg, DType::Q8_0);
    s.exec = std::make_unique<SpanExecutor>(*s.be, *s.src, 0, kLayers);
  }
  return s;
}

void decode(benchmark::State& state, const std::string& spec, bool batched) {
  Span& sp = span_for(spec);
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::int64_t hidden = sp.exec->config().hidden;
  CacheBudget budget(static_cast<std::int64_t>(n) * kMaxLength);
  SessionManager mgr(*sp.exec, budget, kMaxLength, 3600s);
  std::vector<std::shared_ptr<InferenceSession>> sessions;
  std::vector<std::vector<float>> inputs;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (std::size_t i = 0; i < n; ++i) {
    sessions.push_back(mgr.open("s" + std::to_string(i), {1, kMaxLength, 0ms}));
    inputs.emplace_back(static_cast<std::size_t>(hidden));
    for (float& x : inputs.back()) x = dist(rng);
  }
  std::int64_t pos = 0;
  auto one_round = [&] {
    if (batched) {
      std::vector<StepRequest> reqs;
      for (std::size_t i = 0; i < n; ++i)
        reqs.push_back({sessions[i].get(), inputs[i], 1, {}, pos});
      benchmark::DoNotOptimize(step_batch(reqs));
    } else {
      for (std::size_t i = 0; i < n; ++i)
        benchmark::DoNotOptimize(sessions[i]->step(inputs[i], 1, {}, pos));
    }
    pos = (pos + 1) % kCycle;
  };
  one_round();  // warm-up: scratch buffers and pipelines for this row count
  for (auto _ : state) one_round();
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(sp.be->description());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> devices{"cpu"};
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    constexpr const char* flag = "--kwaai_devices=";
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) {
      devices.clear();
      std::stringstream ss(argv[i] + std::strlen(flag));
      for (std::string d; std::getline(ss, d, ',');) devices.push_back(d);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  for (const std::string& d : devices)
    for (bool batched : {false, true})
      benchmark::RegisterBenchmark((d + (batched ? "/step_batch" : "/one_by_one")).c_str(),
                                   [d, batched](benchmark::State& s) { decode(s, d, batched); })
          ->Arg(1)
          ->Arg(2)
          ->Arg(4)
          ->Arg(8)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
