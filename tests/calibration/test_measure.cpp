// The measured side of calibration on real backends (kept tiny: stories260K shapes): where the
// device memory comes from, per-block rates, and calibrate() end to end with a given memory.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "calibration/calibrate.hpp"
#include "calibration/measure.hpp"
#include "calibration/topology.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/llama/synthetic_source.hpp"
#include "engine/model/model_source.hpp"
#include "runtime/context.hpp"

namespace kwaai::calibration {
namespace {

using namespace kwaai::engine;

TEST(CalibrationMeasure, CpuBackendMemoryIsHwlocRam) {
  auto be = make_backend("cpu");
  const DeviceMemory m = device_memory(*be);
  EXPECT_EQ(m.source, "hwloc RAM");
  EXPECT_EQ(m.bytes, detect_cpu_topology().total_memory);
  EXPECT_GT(m.bytes, 0u);
}

TEST(CalibrationMeasure, VulkanMemoryIsLargestDeviceLocalHeapOrRamForCpuDevices) {
  std::vector<runtime::DeviceCaps> devices;
  try {
    devices = runtime::Context::enumerate();
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no Vulkan: " << e.what();
  }
  for (const auto& caps : devices) {
    SCOPED_TRACE(caps.name);
    auto be = make_backend("vulkan:" + std::to_string(caps.index));
    const DeviceMemory m = device_memory(*be);
    if (caps.is_cpu_device || caps.type == runtime::DeviceType::Cpu) {
      EXPECT_EQ(m.source, "hwloc RAM");
      EXPECT_EQ(m.bytes, detect_cpu_topology().total_memory);
    } else {
      std::uint64_t largest = 0;
      for (const auto& h : caps.heaps)
        if (h.device_local) largest = std::max(largest, h.size);
      EXPECT_EQ(m.source, "vulkan device-local heap");
      EXPECT_EQ(m.bytes, largest);
    }
  }
}

TEST(CalibrationMeasure, OneStories260kBlockGivesPositiveRates) {
  ModelConfig cfg = llama::known_config("stories260k");
  cfg.layers = 1;
  llama::SyntheticSource src(cfg, DType::F16);
  auto be = make_backend("cpu");
  const ComputeRates r = measure_compute_rps(*be, src, kNoQuant, {32, 2, 8});
  EXPECT_TRUE(std::isfinite(r.forward_rps) && r.forward_rps > 0) << r.forward_rps;
  EXPECT_TRUE(std::isfinite(r.inference_rps) && r.inference_rps > 0) << r.inference_rps;
  EXPECT_EQ(r.forward_tokens, 32);
  EXPECT_EQ(r.forward_steps, 2);
  EXPECT_EQ(r.inference_steps, 8);
  EXPECT_GT(r.loaded_block_bytes, 0u);
  EXPECT_THROW(measure_compute_rps(*be, src, kNoQuant, {0, 1, 1}), std::invalid_argument);
}

// Petals' rule per family: Mixtral's config declares one KV group (sic), so its cache per block
// is counted for all heads and takes the non-GQA 4096 tokens; Falcon 7B's multi-query counts
// heads groups (16384 tokens, the cache of one KV head).
TEST(CalibrationMeasure, CacheBudgetFollowsEachFamilysKvGroups) {
  auto be = engine::make_backend("cpu");
  CalibrateOptions o;
  o.quick = true;
  o.memory_bytes = 64ull << 20;
  const std::string models = std::string(KWAAI_SHARED_DIR) + "/models/";
  const auto mixtral = engine::open_model(models + "tiny-mixtral");
  const Profile m = calibrate(o, *be, *mixtral);
  EXPECT_EQ(m.attn_cache_tokens, 4096);
  EXPECT_EQ(m.cache_bytes_per_block, 2u * 64 * 4096 * 2);  // 2 x hidden x tokens / 1 x bf16
  const auto falcon = engine::open_model(models + "tiny-falcon-7b");
  const Profile f = calibrate(o, *be, *falcon);
  EXPECT_EQ(f.attn_cache_tokens, 16384);
  EXPECT_EQ(f.cache_bytes_per_block, 2u * 64 * 16384 / 4 * 2);
}

TEST(CalibrationMeasure, CalibrateAppliesPetalsRuleToGivenMemory) {
  CalibrateOptions o;
  o.synthetic = "stories260k";
  o.device = "cpu";
  o.quick = true;
  o.memory_bytes = 16ull << 20;     // (16 MiB - 9586980.57) / (91789 + 2097152) -> 3 blocks
  o.network_bits_per_second = 1e6;  // 1e6 / (64 * 16) = 976.5625 rps
  const Profile p = calibrate(o);
  EXPECT_EQ(p.memory_source, "given");
  EXPECT_EQ(p.num_blocks, 3);
  EXPECT_EQ(p.num_layers, 5);
  EXPECT_EQ(p.block_bytes, 91789u);
  EXPECT_EQ(p.network_source, "given");
  EXPECT_DOUBLE_EQ(p.network_rps, 976.5625);
  EXPECT_DOUBLE_EQ(p.throughput, std::min(p.forward_rps / 2, 976.5625));  // (3 + 1) / 2
  EXPECT_EQ(Profile::from_json(p.to_json()).to_json(), p.to_json());

  o.memory_bytes = 4ull << 20;  // below the autograd reserve + one block
  EXPECT_THROW(calibrate(o), std::runtime_error);
  o.memory_bytes = 0;
  o.quant = "nf4";
  EXPECT_THROW(calibrate(o), std::invalid_argument);
  o.quant = "none";
  o.model = "/nonexistent";  // both --model and --synthetic
  EXPECT_THROW(calibrate(o), std::invalid_argument);
}

}  // namespace
}  // namespace kwaai::calibration
