#include "calibration/measure.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>
#include <stdexcept>
#include <vector>

#include "calibration/topology.hpp"
#include "engine/llama/span_executor.hpp"
#include "runtime/context.hpp"
#include "runtime/device_caps.hpp"

namespace kwaai::calibration {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::vector<float> random_hidden(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

DeviceMemory host_ram() {
  const CpuTopology t = detect_cpu_topology();
  if (t.total_memory == 0) throw std::runtime_error("calibration: hwloc reports no memory");
  return {t.total_memory, "hwloc RAM"};
}

// "vulkan:3" -> 3 (the backend's name() carries the enumeration index).
std::uint32_t vulkan_index(const std::string& name) {
  const auto colon = name.find(':');
  std::uint32_t index = 0;
  if (colon != std::string::npos) {
    const char* b = name.data() + colon + 1;
    const char* e = name.data() + name.size();
    auto [end, ec] = std::from_chars(b, e, index);
    if (ec != std::errc{} || end != e)
      throw std::runtime_error("calibration: cannot read a device index from '" + name + "'");
  }
  return index;
}

}  // namespace

DeviceMemory device_memory(const engine::Backend& be) {
  if (be.kind() == engine::BackendKind::Cpu) return host_ram();
  const std::uint32_t index = vulkan_index(be.name());
  for (const runtime::DeviceCaps& caps : runtime::Context::enumerate()) {
    if (caps.index != index) continue;
    if (caps.is_cpu_device || caps.type == runtime::DeviceType::Cpu) return host_ram();
    std::uint64_t largest = 0;
    for (const auto& h : caps.heaps)
      if (h.device_local) largest = std::max(largest, h.size);
    if (largest == 0)
      throw std::runtime_error("calibration: Vulkan device " + caps.name +
                               " reports no device-local heap");
    return {largest, "vulkan device-local heap"};
  }
  throw std::runtime_error("calibration: Vulkan device index " + std::to_string(index) +
                           " not found");
}

ComputeRates measure_compute_rps(engine::Backend& be, const engine::ModelSource& src,
                                 engine::Quant quant, const MeasureOptions& opt) {
  if (opt.forward_tokens < 1 || opt.forward_steps < 1 || opt.inference_steps < 1)
    throw std::invalid_argument("calibration: measurement steps and tokens must be >= 1");
  const std::int64_t h = src.config().hidden;
  engine::llama::SpanExecutor exec(be, src, 0, 1, quant);
  ComputeRates r;
  r.forward_tokens = opt.forward_tokens;
  r.forward_steps = opt.forward_steps;
  r.inference_steps = opt.inference_steps;
  r.loaded_block_bytes = exec.weight_bytes();

  // Forward (Petals: use_cache=False): every step is the same n_tokens prompt from position 0,
  // so the cache is rewritten in place rather than grown.
  {
    const std::int64_t t = opt.forward_tokens;
    engine::llama::KvCache cache = exec.make_cache(1, t);
    const auto x = random_hidden(t * h, 11);
    exec.forward(x, 1, t, cache, 0);  // warm-up: pipelines, scratch, first touch
    const auto t0 = clock_type::now();
    for (std::int64_t i = 0; i < opt.forward_steps; ++i) exec.forward(x, 1, t, cache, 0);
    r.forward_rps = static_cast<double>(opt.forward_steps * t) / seconds_since(t0);
    spdlog::debug("calibrate: forward {} x {} tokens: {:.1f} tokens/s", opt.forward_steps, t,
                  r.forward_rps);
  }
  // Inference: one token per step into a cache that grows by one each step.
  {
    const std::int64_t steps = opt.inference_steps;
    engine::llama::KvCache cache = exec.make_cache(1, steps + 1);
    const auto x = random_hidden(h, 12);
    exec.forward(x, 1, 1, cache, 0);  // warm-up
    const auto t0 = clock_type::now();
    for (std::int64_t i = 0; i < steps; ++i) exec.forward(x, 1, 1, cache, 1 + i);
    r.inference_rps = static_cast<double>(steps) / seconds_since(t0);
    spdlog::debug("calibrate: inference {} steps: {:.1f} tokens/s", steps, r.inference_rps);
  }
  return r;
}

}  // namespace kwaai::calibration
