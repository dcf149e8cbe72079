// tokens/s of prefill and decode over a span of Llama blocks, with the roofline fraction of
// each phase: decode against the device's measured copy bandwidth (weights + KV read per
// step), prefill against the device's measured f32 matmul peak.
#include "cli/bench_tokens.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>

#include "engine/core/backend.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/llama/span_executor.hpp"
#include "engine/llama/synthetic_source.hpp"
#include "engine/model/model_source.hpp"

namespace kwaai::cli {

namespace {

using namespace kwaai::engine;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Device copy bandwidth (read + write bytes per second) from backend copies of 64 MiB.
double measure_copy_bandwidth(Backend& be) {
  const std::int64_t n = 16 << 20;
  Tensor a = be.alloc(DType::F32, {n}), b = be.alloc(DType::F32, {n});
  std::vector<float> init(static_cast<std::size_t>(n), 1.0f);
  be.upload(a, std::as_bytes(std::span(init)));
  be.copy(a, b);
  be.flush();
  constexpr int kReps = 6;
  const auto t0 = clock_type::now();
  for (int i = 0; i < kReps; ++i) be.copy(i % 2 ? b : a, i % 2 ? a : b);
  be.flush();
  return 2.0 * static_cast<double>(a.nbytes()) * kReps / seconds_since(t0);
}

// f32 matmul rate (FLOP/s) of x[m, k] · w[n, k]^T: the prefill ceiling we compare to. The size
// grows from [64, 1024] x [1024, 1024] until one product takes ~0.3 s or reaches
// [512, 4096] x [4096, 4096], so a slow device (lavapipe) is not stuck on a huge product.
double measure_peak_flops(Backend& be) {
  std::int64_t m = 64, k = 1024, n = 1024;
  for (;;) {
    Tensor x = be.alloc(DType::F32, {m, k}), w = be.alloc(DType::F32, {n, k}),
           y = be.alloc(DType::F32, {m, n});
    std::vector<float> hx(static_cast<std::size_t>(m * k), 0.5f),
        hw(static_cast<std::size_t>(n * k), 0.25f);
    be.upload(x, std::as_bytes(std::span(hx)));
    be.upload(w, std::as_bytes(std::span(hw)));
    be.matmul(x, w, y);  // warm-up: pipelines, first touch
    be.flush();
    const auto t0 = clock_type::now();
    be.matmul(x, w, y);
    be.flush();
    const double t = seconds_since(t0);
    const bool largest = m == 512 && k == 4096;
    if (t > 0.3 || largest) return 2.0 * m * n * k / t;
    if (m < 512)
      m *= 2;
    else
      k *= 2, n *= 2;
  }
}

std::vector<float> random_hidden(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

struct Source {
  std::unique_ptr<ModelSource> src;
  Quant upload_quant = kNoQuant;
  std::int64_t total_layers = 0;
  std::string label;
};

Source make_source(const BenchTokensOptions& o) {
  Source s;
  if (!o.synthetic.empty()) {
    ModelConfig cfg = llama::known_config(o.synthetic);
    s.total_layers = cfg.layers;
    if (o.layers > 0) cfg.layers = std::min(o.layers, cfg.layers);
    const std::string q = o.quant == "none" ? "f16" : o.quant;
    if (q != "f16" && q != "q8_0" && q != "q4_0")
      throw std::invalid_argument("bench --synthetic: --quant must be f16, q8_0 or q4_0");
    s.src = std::make_unique<llama::SyntheticSource>(cfg, dtype_from_name(q));
    s.label = o.synthetic + " (synthetic, " + q + ")";
  } else {
    s.src = open_model(o.model);
    s.total_layers = s.src->config().layers;
    s.upload_quant = quant_from_name(o.quant == "f16" ? "none" : o.quant);
    s.label = o.model + " (" + o.quant + ")";
  }
  return s;
}

nlohmann::json make_row(const std::string& device, const char* phase, std::int64_t tokens,
                        double secs, double roofline, double layers, double total_layers) {
  const double tps = tokens / secs;
  return {{"device", device},    {"phase", phase},
          {"tokens", tokens},    {"seconds", secs},
          {"tokens_per_s", tps}, {"roofline_fraction", roofline},
          {"layers", layers},    {"full_model_tokens_per_s", tps * layers / total_layers}};
}

// Op kind of a profile label: what comes before its first shape ("matmul q8_0 [1,4096]x..."
// -> "matmul q8_0", "attention f32[1, 1, 32, 128] past 7" -> "attention f32").
std::string op_kind(const std::string& label) {
  std::string k = label.substr(0, label.find('['));
  while (!k.empty() && k.back() == ' ') k.pop_back();
  return k;
}

// The backend's profile since the last call, summed per op kind, largest first.
nlohmann::json take_op_profile(Backend& be, double phase_s) {
  std::map<std::string, std::pair<std::int64_t, double>> by_kind;
  for (const auto& t : be.take_profile()) {
    auto& [calls, secs] = by_kind[op_kind(t.op)];
    ++calls;
    secs += t.seconds;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [kind, v] : by_kind)
    rows.push_back({{"op", kind},
                    {"calls", v.first},
                    {"seconds", v.second},
                    {"share", phase_s > 0 ? v.second / phase_s : 0.0}});
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a["seconds"].template get<double>() > b["seconds"].template get<double>();
  });
  return rows;
}

void print_op_profile(const std::string& dev, const char* phase, const nlohmann::json& rows) {
  std::fprintf(stderr, "[bench] %s %s profile (op, calls, ms, share of the phase):\n", dev.c_str(),
               phase);
  for (const auto& r : rows)
    std::fprintf(stderr, "  %-28s %8lld %10.2f %6.1f%%\n", r["op"].get<std::string>().c_str(),
                 r["calls"].get<long long>(), 1e3 * r["seconds"].get<double>(),
                 100 * r["share"].get<double>());
}

}  // namespace

void add_bench_tokens_options(CLI::App& bench, BenchTokensOptions& o) {
  bench.add_option("--model", o.model, "tokens/s of this model (HF folder or .gguf)");
  bench.add_option("--synthetic", o.synthetic,
                   "tokens/s with random weights of real shapes: llama-3-8b | llama-2-7b | "
                   "llama-3-70b | stories260k");
  bench.add_option("--layers", o.layers, "time only the first N blocks (0 = all)")
      ->check(CLI::NonNegativeNumber);
  bench.add_option("--prompt-len", o.prompt_len, "prefill tokens per sequence")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 16));
  bench.add_option("--gen-len", o.gen_len, "decode steps")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 16));
  bench.add_option("--batch", o.batch, "sequences per step")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1024}));
  bench.add_flag("--profile", o.profile,
                 "time every op of the timed phases and print the time per op kind (adds a "
                 "little overhead per op; with --json each row gets a \"profile\")");
}

bool bench_tokens_selected(const BenchTokensOptions& o) {
  return !o.model.empty() || !o.synthetic.empty();
}

nlohmann::json run_bench_tokens(const BenchTokensOptions& o) {
  if (o.model.empty() == o.synthetic.empty())
    throw std::invalid_argument("bench: give exactly one of --model and --synthetic");
  const std::vector<std::string> devices =
      o.devices.empty() ? std::vector<std::string>{"auto"} : o.devices;
  nlohmann::json out{{"rows", nlohmann::json::array()}, {"devices", nlohmann::json::array()}};
  for (const std::string& spec : devices) {
    auto be = make_backend(spec);
    const std::string dev = be->name();
    std::fprintf(stderr, "[bench] %s: measuring copy bandwidth and f32 matmul peak\n", dev.c_str());
    const double bw = measure_copy_bandwidth(*be);
    const double peak = measure_peak_flops(*be);
    Source s = make_source(o);
    const ModelConfig& cfg = s.src->config();
    const std::int64_t layers = o.layers > 0 ? std::min(o.layers, cfg.layers) : cfg.layers;
    std::fprintf(stderr, "[bench] %s: loading %lld blocks of %s\n", dev.c_str(),
                 static_cast<long long>(layers), s.label.c_str());
    llama::SpanExecutor exec(*be, *s.src, 0, layers, s.upload_quant);
    out["devices"].push_back({{"device", dev},
                              {"description", be->description()},
                              {"copy_bandwidth_gb_s", bw / 1e9},
                              {"f32_matmul_peak_gflops", peak / 1e9},
                              {"weight_bytes", exec.weight_bytes()}});
    const std::int64_t b = o.batch, p = o.prompt_len, g = o.gen_len, h = cfg.hidden;
    llama::KvCache cache = exec.make_cache(b, p + g + 1);

    // Prefill: a short warm-up (pipelines, scratch), then the whole prompt from position 0.
    exec.forward(random_hidden(b * std::min<std::int64_t>(p, 4) * h, 1), b,
                 std::min<std::int64_t>(p, 4), cache, 0);
    std::fprintf(stderr, "[bench] %s: prefill %lld x %lld tokens\n", dev.c_str(),
                 static_cast<long long>(b), static_cast<long long>(p));
    const auto prompt = random_hidden(b * p * h, 2);
    be->take_profile();  // drop anything recorded before
    be->set_profiling(o.profile);
    auto t0 = clock_type::now();
    exec.forward(prompt, b, p, cache, 0);
    const double prefill_s = seconds_since(t0);
    be->set_profiling(false);
    const nlohmann::json prefill_profile = take_op_profile(*be, prefill_s);
    const double mat_params = static_cast<double>(llama::block_params(cfg) - 2 * cfg.hidden);
    const double attn_flops = 4.0 * llama::q_dim(cfg) * (p * (p + 1) / 2.0);
    const double prefill_flops = layers * b * (2.0 * mat_params * p + attn_flops);
    out["rows"].push_back(make_row(dev, "prefill", b * p, prefill_s,
                                   prefill_flops / prefill_s / peak, layers, s.total_layers));
    if (o.profile) out["rows"].back()["profile"] = prefill_profile;

    // Decode: one warm-up step, then gen_len timed steps of one token per sequence.
    const auto tok = random_hidden(b * h, 3);
    exec.forward(tok, b, 1, cache, p);
    double kv_bytes = 0;
    be->set_profiling(o.profile);
    t0 = clock_type::now();
    for (std::int64_t i = 0; i < g; ++i) {
      exec.forward(tok, b, 1, cache, p + 1 + i);
      kv_bytes += 2.0 * b * (p + 2 + i) * llama::kv_dim(cfg) * sizeof(float) * layers;
      std::fprintf(stderr, "\r[bench] %s: decode step %lld/%lld", dev.c_str(),
                   static_cast<long long>(i + 1), static_cast<long long>(g));
    }
    const double decode_s = seconds_since(t0);
    be->set_profiling(false);
    std::fprintf(stderr, "\n");
    const double bytes = static_cast<double>(exec.weight_bytes()) * g + kv_bytes;
    out["rows"].push_back(
        make_row(dev, "decode", b * g, decode_s, bytes / decode_s / bw, layers, s.total_layers));
    if (o.profile) {
      out["rows"].back()["profile"] = take_op_profile(*be, decode_s);
      print_op_profile(dev, "prefill", prefill_profile);
      print_op_profile(dev, "decode", out["rows"].back()["profile"]);
    }
  }

  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::printf("%-12s %-8s %8s %12s %10s %14s\n", "device", "phase", "tokens", "tokens/s",
                "roofline", "full-model t/s");
    for (const auto& r : out["rows"])
      std::printf("%-12s %-8s %8lld %12.2f %9.1f%% %14.2f\n",
                  r["device"].get<std::string>().c_str(), r["phase"].get<std::string>().c_str(),
                  r["tokens"].get<long long>(), r["tokens_per_s"].get<double>(),
                  100 * r["roofline_fraction"].get<double>(),
                  r["full_model_tokens_per_s"].get<double>());
    for (const auto& d : out["devices"])
      std::printf("%s: copy bandwidth %.1f GB/s, f32 matmul peak %.1f GFLOP/s, weights %.1f MiB\n",
                  d["device"].get<std::string>().c_str(), d["copy_bandwidth_gb_s"].get<double>(),
                  d["f32_matmul_peak_gflops"].get<double>(),
                  d["weight_bytes"].get<double>() / (1 << 20));
  }
  return out;
}

}  // namespace kwaai::cli
