#include "calibration/calibrate.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "calibration/measure.hpp"
#include "calibration/petals_rules.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/llama/synthetic_source.hpp"

namespace kwaai::calibration {

namespace {

using namespace kwaai::engine;

BlockShape shape_of(const ModelConfig& c, std::int64_t layers) {
  BlockShape s;
  s.hidden = c.hidden;
  s.heads = c.heads;
  // Petals' block configs declare num_key_value_groups = 1 for Mixtral (sic: its GQA cache
  // then counts as heads / kv_heads times larger, and takes the non-GQA 4096-token default)
  // and for Bloom; Falcon's is heads / kv_heads (multi-query: heads), as here.
  s.kv_heads = c.experts > 0 ? c.heads : c.kv_heads;
  s.layers = layers;
  s.block_params = llama::block_params(c);
  return s;
}

}  // namespace

std::string model_label(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing '/'
  std::string name = p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
  return name.empty() ? path : name;
}

namespace {

void check_options(const CalibrateOptions& opt) {
  try {
    (void)quant_from_name(opt.quant);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("calibrate: --quant: ") + e.what());
  }
  if (opt.layers < 0) throw std::invalid_argument("calibrate: --layers must be >= 0");
}

// Steps 1-4 on an open backend and source: `layers` is the model's depth (the cap on
// num_blocks), `src` needs only block 0.
Profile measure_profile(const CalibrateOptions& opt, Backend& be, const ModelSource& src,
                        std::int64_t layers, Quant upload_quant, std::string model_name) {
  const ModelConfig& cfg = src.config();
  llama::validate_llama(cfg);
  const engine::DType format = weight_format_from_quant(opt.quant);
  Profile p;
  p.model = std::move(model_name);
  p.device = be.name();
  p.device_name = be.description();
  p.quant = opt.quant;
  p.quick = opt.quick;

  // 1. Memory -> num_blocks (Petals' _choose_num_blocks).
  DeviceMemory mem =
      opt.memory_bytes > 0 ? DeviceMemory{opt.memory_bytes, "given"} : device_memory(be);
  const BlockBudget budget = choose_num_blocks(shape_of(cfg, layers), format, mem.bytes);
  p.memory_bytes = mem.bytes;
  p.memory_source = mem.source;
  p.autograd_bytes = budget.autograd_bytes;
  p.block_bytes = budget.block_bytes;
  p.attn_cache_tokens = budget.attn_cache_tokens;
  p.cache_bytes_per_block = budget.cache_bytes_per_block;
  p.num_layers = layers;
  p.num_blocks = budget.num_blocks;
  spdlog::info(
      "calibrate: {} on {} ({}): memory {} bytes ({}), block {} + cache {} bytes -> {} "
      "of {} blocks",
      p.model, p.device, p.device_name, p.memory_bytes, p.memory_source, p.block_bytes,
      p.cache_bytes_per_block, p.num_blocks, layers);

  // 2. Compute (Petals' measure_compute_rps on one block).
  const MeasureOptions mo = opt.quick ? MeasureOptions::quick() : MeasureOptions{};
  spdlog::info("calibrate: measuring one block: forward {} x {} tokens, inference {} steps",
               mo.forward_steps, mo.forward_tokens, mo.inference_steps);
  const ComputeRates rates = measure_compute_rps(be, src, upload_quant, mo);
  p.forward_rps = rates.forward_rps;
  p.inference_rps = rates.inference_rps;
  p.compute_rps = rates.forward_rps;

  // 3. Network: a speed test needs the internet (loopback says nothing about the link peers
  // use), so we take a bit rate the operator measured, else Petals' own fallback.
  const bool given = opt.network_bits_per_second > 0;
  p.network_rps = network_rps_from_bits_per_second(
      given ? opt.network_bits_per_second : kPetalsDefaultNetworkBitsPerSecond, cfg.hidden);
  p.network_source = given ? "given" : "petals-default-100mbit";

  // 4. Announced throughput (get_server_throughput).
  p.using_relay = opt.using_relay;
  p.throughput = announced_throughput(p.forward_rps, p.network_rps, p.num_blocks, p.using_relay);
  p.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return p;
}

}  // namespace

Profile calibrate(const CalibrateOptions& opt) {
  if (opt.model.empty() == opt.synthetic.empty())
    throw std::invalid_argument("calibrate: give exactly one of --model and --synthetic");
  check_options(opt);
  // The measured block: synthetic weights of the real shapes (made in the format being
  // calibrated, f16 for none), or block 0 of the real model converted like serve would.
  if (!opt.synthetic.empty()) {
    ModelConfig cfg = llama::known_config(opt.synthetic);
    const std::int64_t layers = opt.layers > 0 ? opt.layers : cfg.layers;
    cfg.layers = 1;  // only block 0 is ever loaded
    const std::string dtype = opt.quant == "none" ? "f16" : opt.quant;
    const llama::SyntheticSource src(cfg, dtype_from_name(dtype));
    auto be = make_backend(opt.device);
    return measure_profile(opt, *be, src, layers, kNoQuant, opt.synthetic);
  }
  if (opt.layers > 0) throw std::invalid_argument("calibrate: --layers applies to --synthetic");
  const auto src = open_model(opt.model);
  auto be = make_backend(opt.device);
  return calibrate(opt, *be, *src);
}

Profile calibrate(const CalibrateOptions& opt, Backend& be, const ModelSource& src) {
  check_options(opt);
  return measure_profile(opt, be, src, src.config().layers, quant_from_name(opt.quant),
                         model_label(opt.model));
}

}  // namespace kwaai::calibration
