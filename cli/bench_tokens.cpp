// tokens/s of prefill and decode over a span of Llama blocks, with the roofline fraction of
// each phase: decode against the device's measured copy bandwidth (weights + KV read per
// step), prefill against the device's measured f32 matmul peak.
#include "cli/bench_tokens.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>

#include "engine/core/backend.hpp"
#include "engine/core/formats.hpp"
#include "engine/cpu/cpu_backend.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/llama/model.hpp"
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

// A file's first `layers` blocks as a model of that depth (its ends included), so a prefix of a
// large checkpoint can be timed the way the whole file is.
class PrefixSource final : public ModelSource {
 public:
  PrefixSource(std::unique_ptr<ModelSource> inner, std::int64_t layers)
      : inner_(std::move(inner)), cfg_(inner_->config()) {
    cfg_.layers = layers;
  }
  const ModelConfig& config() const override { return cfg_; }
  std::string format() const override { return inner_->format(); }
  const std::string& path() const override { return inner_->path(); }
  std::vector<std::string> names() const override { return inner_->names(); }
  bool has(const std::string& n) const override { return inner_->has(n); }
  TensorInfo info(const std::string& n) const override { return inner_->info(n); }
  HostTensor load(const std::string& n) const override { return inner_->load(n); }
  std::uint64_t bytes_read() const override { return inner_->bytes_read(); }

 private:
  std::unique_ptr<ModelSource> inner_;
  ModelConfig cfg_;
};

struct Source {
  std::unique_ptr<ModelSource> src;  // config().layers = the blocks timed
  Quant upload_quant = kNoQuant;
  std::int64_t total_layers = 0;
  std::string label;
};

// Synthetic: --quant picks the generated format (none = f16, the stored format of a synthetic
// model); a file keeps its stored format unless --quant names a load-time target.
Source make_source(const BenchTokensOptions& o) {
  Source s;
  if (!o.synthetic.empty()) {
    ModelConfig cfg = llama::known_config(o.synthetic);
    s.total_layers = cfg.layers;
    if (o.layers > 0) cfg.layers = std::min(o.layers, cfg.layers);
    const std::string q = o.quant == "none" ? "f16" : o.quant;
    s.src = std::make_unique<llama::SyntheticSource>(cfg, dtype_from_name(q));
    s.label = o.synthetic + " (synthetic, " + q + ")";
  } else {
    auto file = open_model(o.model);
    s.total_layers = file->config().layers;
    s.upload_quant = quant_from_name(o.quant);
    s.label = o.model + " (" +
              (o.quant == "none" ? std::string("stored format") : "quantized to " + o.quant) + ")";
    if (o.layers > 0 && o.layers < s.total_layers)
      s.src = std::make_unique<PrefixSource>(std::move(file), o.layers);
    else
      s.src = std::move(file);
  }
  return s;
}

// Per-device probes, measured once per process (each takes seconds): the copy bandwidth (decode
// roofline), the f32 matmul peak (prefill roofline of float weights) and, on the CPU, the int8
// dot peak of its kernel table (prefill roofline of block-quantized weights).
struct Probes {
  double copy_bw = 0, f32_peak = 0, int8_peak = 0;
};

const Probes& probes_for(Backend& be) {
  static std::map<std::string, Probes> cache;
  const std::string key = be.name() + "|" + be.description();
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::fprintf(stderr, "[bench] %s: measuring copy bandwidth and matmul peaks (once per run)\n",
               be.name().c_str());
  Probes p;
  p.copy_bw = measure_copy_bandwidth(be);
  p.f32_peak = measure_peak_flops(be);
  p.int8_peak = 2.0 * cpu_int8_peak(be);  // FLOP/s: a multiply-add is two
  return cache.emplace(key, p).first->second;
}

// Random token ids away from the special ones.
std::vector<std::int32_t> random_ids(std::int64_t n, std::int64_t vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> d(std::min<std::int64_t>(3, vocab - 1), vocab - 1);
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<std::int32_t>(d(rng));
  return v;
}

// One phase timed twice: the whole model (embedding, blocks, final norm, LM head; what a user
// of the file gets) and the blocks alone (what a Petals server runs). When only a prefix of
// the model's blocks is timed, the full model is estimated from the two: the ends once plus
// the measured blocks scaled to every layer.
struct PhaseTiming {
  double whole_s = 0, blocks_s = 0;
  double full_model_s(std::int64_t layers, std::int64_t total) const {
    if (layers >= total) return whole_s;
    const double ends = std::max(0.0, whole_s - blocks_s);
    return ends + blocks_s * static_cast<double>(total) / static_cast<double>(layers);
  }
};

nlohmann::json make_row(const std::string& device, const char* phase, std::int64_t tokens,
                        const PhaseTiming& t, double roofline, std::int64_t layers,
                        std::int64_t total_layers) {
  return {{"device", device},
          {"phase", phase},
          {"tokens", tokens},
          {"seconds", t.whole_s},
          {"tokens_per_s", tokens / t.whole_s},
          {"blocks_seconds", t.blocks_s},
          {"blocks_tokens_per_s", tokens / t.blocks_s},
          {"roofline_fraction", roofline},
          {"layers", layers},
          {"total_layers", total_layers},
          {"whole_model", layers >= total_layers},
          {"full_model_tokens_per_s", tokens / t.full_model_s(layers, total_layers)}};
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
                   "llama-3-70b | tinyllama-1.1b | stories260k");
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

void validate(const BenchTokensOptions& o) {
  if (o.model.empty() == o.synthetic.empty())
    throw std::invalid_argument("bench: give exactly one of --model and --synthetic");
  if (!o.synthetic.empty()) {
    (void)llama::known_config(o.synthetic);  // throws naming the known shapes
    if (o.quant != "none" && o.quant != "f16" && !find_format(o.quant))
      throw std::invalid_argument("bench --synthetic: --quant must be none (f16), f16, " +
                                  format_names(is_load_quant_format) + "; got '" + o.quant + "'");
    if (o.quant != "none" && o.quant != "f16" && !format_info(dtype_from_name(o.quant)).load_quant)
      throw std::invalid_argument("bench --synthetic: no synthetic weights of " + o.quant);
  } else {
    if (o.quant == "f16")
      throw std::invalid_argument(
          "bench --model: --quant f16 is for --synthetic; a file keeps its stored format under "
          "--quant none (" +
          quant_choices(", ") + ")");
    (void)quant_from_name(o.quant);
  }
}

// Progress on a terminal rewrites one line; into a pipe or file it prints nothing per step
// (one line per phase is printed either way), so logs do not run together.
void progress(const std::string& dev, std::int64_t i, std::int64_t n) {
  static const bool tty = isatty(fileno(stderr)) != 0;
  if (!tty) return;
  std::fprintf(stderr, "\r[bench] %s: decode step %lld/%lld", dev.c_str(),
               static_cast<long long>(i), static_cast<long long>(n));
  if (i == n) std::fprintf(stderr, "\n");
}

nlohmann::json run_bench_tokens(const BenchTokensOptions& o) {
  validate(o);
  const std::vector<std::string> devices =
      o.devices.empty() ? std::vector<std::string>{"auto"} : o.devices;
  // Every device is opened before anything is measured, so a bad spec fails at once.
  std::vector<std::unique_ptr<Backend>> backends;
  for (const std::string& spec : devices) backends.push_back(make_backend(spec));
  nlohmann::json out{{"rows", nlohmann::json::array()}, {"devices", nlohmann::json::array()}};
  for (auto& bep : backends) {
    Backend& be = *bep;
    const std::string dev = be.name();
    const Probes& pr = probes_for(be);
    Source s = make_source(o);
    const ModelConfig& cfg = s.src->config();
    const std::int64_t layers = cfg.layers;
    std::fprintf(stderr, "[bench] %s: %s\n", dev.c_str(), be.description().c_str());
    std::fprintf(stderr, "[bench] %s: loading %lld of %lld blocks and the model's ends of %s\n",
                 dev.c_str(), static_cast<long long>(layers),
                 static_cast<long long>(s.total_layers), s.label.c_str());
    llama::LlamaModel model(be, *s.src, s.upload_quant);
    llama::SpanExecutor& blocks = model.blocks();
    // Roofline of prefill: the int8 peak when the block matrices are block-quantized on a
    // backend that multiplies them in int8 (the CPU), else the f32 matmul peak.
    const DType wq = s.upload_quant.value_or(
        s.src->info(block_tensor_name(s.src->config(), 0, BlockTensor::Q)).dtype);
    const bool int8_prefill = pr.int8_peak > 0 && format_info(wq).cpu_packed;
    const double peak = int8_prefill ? pr.int8_peak : pr.f32_peak;
    out["devices"].push_back(
        {{"device", dev},
         {"description", be.description()},
         {"copy_bandwidth_gb_s", pr.copy_bw / 1e9},
         {"f32_matmul_peak_gflops", pr.f32_peak / 1e9},
         {"int8_dot_peak_gops", pr.int8_peak / 1e9},
         {"prefill_roofline", int8_prefill ? "int8 dot peak" : "f32 matmul peak"},
         {"weight_bytes", model.weight_bytes()},
         {"block_weight_bytes", blocks.weight_bytes()}});
    const std::int64_t b = o.batch, p = o.prompt_len, g = o.gen_len, h = cfg.hidden;
    llama::KvCache cache = model.make_cache(b, p + g + 1);
    llama::KvCache bcache = blocks.make_cache(b, p + g + 1);

    // Prefill: a short warm-up (pipelines, scratch, first touch of the weights), then the
    // whole prompt from position 0, through the whole model and through the blocks alone.
    const std::int64_t wp = std::min<std::int64_t>(p, 4);
    model.forward(random_ids(b * wp, cfg.vocab, 1), b, wp, cache, 0);
    blocks.forward(random_hidden(b * wp * h, 1), b, wp, bcache, 0);
    std::fprintf(stderr, "[bench] %s: prefill %lld x %lld tokens\n", dev.c_str(),
                 static_cast<long long>(b), static_cast<long long>(p));
    const auto prompt_ids = random_ids(b * p, cfg.vocab, 2);
    const auto prompt = random_hidden(b * p * h, 2);
    PhaseTiming pre;
    be.take_profile();  // drop anything recorded before
    be.set_profiling(o.profile);
    auto t0 = clock_type::now();
    model.forward(prompt_ids, b, p, cache, 0);
    pre.whole_s = seconds_since(t0);
    be.set_profiling(false);
    const nlohmann::json prefill_profile = take_op_profile(be, pre.whole_s);
    t0 = clock_type::now();
    blocks.forward(prompt, b, p, bcache, 0);
    pre.blocks_s = seconds_since(t0);
    const double mat_params = static_cast<double>(llama::block_params(cfg) - 2 * cfg.hidden);
    const double attn_flops = 4.0 * llama::q_dim(cfg) * (p * (p + 1) / 2.0);
    const double prefill_flops = layers * b * (2.0 * mat_params * p + attn_flops) +
                                 2.0 * b * static_cast<double>(cfg.vocab) * h;  // the LM head
    out["rows"].push_back(make_row(dev, "prefill", b * p, pre, prefill_flops / pre.whole_s / peak,
                                   layers, s.total_layers));
    if (o.profile) out["rows"].back()["profile"] = prefill_profile;

    // Decode: one warm-up step, then gen_len timed steps of one token per sequence, again
    // whole model and blocks alone.
    const auto tok_ids = random_ids(b, cfg.vocab, 3);
    const auto tok = random_hidden(b * h, 3);
    model.forward(tok_ids, b, 1, cache, p);
    blocks.forward(tok, b, 1, bcache, p);
    double kv_bytes = 0;
    PhaseTiming dec;
    be.set_profiling(o.profile);
    t0 = clock_type::now();
    for (std::int64_t i = 0; i < g; ++i) {
      model.forward(tok_ids, b, 1, cache, p + 1 + i);
      kv_bytes += 2.0 * b * (p + 2 + i) * llama::kv_dim(cfg) * sizeof(float) * layers;
      progress(dev, i + 1, g);
    }
    dec.whole_s = seconds_since(t0);
    be.set_profiling(false);
    const nlohmann::json decode_profile = take_op_profile(be, dec.whole_s);
    t0 = clock_type::now();
    for (std::int64_t i = 0; i < g; ++i) blocks.forward(tok, b, 1, bcache, p + 1 + i);
    dec.blocks_s = seconds_since(t0);
    std::fprintf(stderr, "[bench] %s: decode %lld x %lld steps done\n", dev.c_str(),
                 static_cast<long long>(b), static_cast<long long>(g));
    const double bytes = static_cast<double>(model.step_weight_bytes()) * g + kv_bytes;
    out["rows"].push_back(make_row(dev, "decode", b * g, dec, bytes / dec.whole_s / pr.copy_bw,
                                   layers, s.total_layers));
    if (o.profile) {
      out["rows"].back()["profile"] = decode_profile;
      print_op_profile(dev, "prefill", prefill_profile);
      print_op_profile(dev, "decode", decode_profile);
    }
  }

  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::printf("%-12s %-8s %7s %12s %12s %10s %14s\n", "device", "phase", "tokens", "tokens/s",
                "blocks t/s", "roofline", "full-model t/s");
    for (const auto& r : out["rows"])
      std::printf("%-12s %-8s %7lld %12.2f %12.2f %9.1f%% %14.2f%s\n",
                  r["device"].get<std::string>().c_str(), r["phase"].get<std::string>().c_str(),
                  r["tokens"].get<long long>(), r["tokens_per_s"].get<double>(),
                  r["blocks_tokens_per_s"].get<double>(),
                  100 * r["roofline_fraction"].get<double>(),
                  r["full_model_tokens_per_s"].get<double>(),
                  r["whole_model"].get<bool>() ? "" : " (estimated)");
    for (const auto& d : out["devices"])
      std::printf(
          "%s: %s\n  copy bandwidth %.1f GB/s, f32 matmul peak %.1f GFLOP/s, int8 dot "
          "peak %.1f GOP/s (prefill roofline: %s), weights %.1f MiB\n",
          d["device"].get<std::string>().c_str(), d["description"].get<std::string>().c_str(),
          d["copy_bandwidth_gb_s"].get<double>(), d["f32_matmul_peak_gflops"].get<double>(),
          d["int8_dot_peak_gops"].get<double>(), d["prefill_roofline"].get<std::string>().c_str(),
          d["weight_bytes"].get<double>() / (1 << 20));
    std::printf(
        "tokens/s: the whole model (embedding, blocks, final norm, LM head), warm-up "
        "excluded; blocks t/s: the blocks alone\n");
  }
  return out;
}

}  // namespace kwaai::cli
