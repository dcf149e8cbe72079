// A 70B-class span from a sharded bf16 HF checkpoint, loaded with quantization at load time
// (issue: load time <= 1.5x the time to read the bytes, peak RSS <= 1.15x the quantized span
// plus its KV cache). bench/span_load.sh drives it:
//   kwaai_span_load --write DIR [--shape llama-3-70b] [--blocks 10] [--blocks-per-shard 2]
//     writes config.json (the shape's real config, all its layers), model.safetensors.index.json
//     and shards holding blocks 0..N-1 only, bf16 values of a trained model's spread;
//   kwaai_span_load --load DIR --blocks N [--quant q4_0] [--device cpu] [--context 2048]
//     uploads blocks [0, N) through SpanExecutor (what `serve` does) with a KV cache for one
//     sequence of `context` tokens and prints one JSON line: seconds, bytes read from the files,
//     device weight bytes, KV cache bytes and the process's peak RSS.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/backend.hpp"
#include "engine/core/formats.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/llama/span_executor.hpp"
#include "engine/model/model_source.hpp"

namespace {

using namespace kwaai::engine;
namespace fs = std::filesystem;

struct Options {
  std::string write, load, shape = "llama-3-70b", quant = "q4_0", device = "cpu";
  std::int64_t blocks = 10, per_shard = 2, context = 2048;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "kwaai_span_load: %s\nusage: kwaai_span_load (--write DIR | --load DIR) [--shape S] "
               "[--blocks N] [--blocks-per-shard N] [--quant none|q4_0|q4_k|...] [--device D] "
               "[--context N]\n",
               why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage("missing value after " + a);
    const std::string v = argv[i + 1];
    if (a == "--write")
      o.write = v;
    else if (a == "--load")
      o.load = v;
    else if (a == "--shape")
      o.shape = v;
    else if (a == "--blocks")
      o.blocks = std::stoll(v);
    else if (a == "--blocks-per-shard")
      o.per_shard = std::stoll(v);
    else if (a == "--quant")
      o.quant = v;
    else if (a == "--device")
      o.device = v;
    else if (a == "--context")
      o.context = std::stoll(v);
    else
      usage("unknown flag " + a);
  }
  if (o.write.empty() == o.load.empty()) usage("one of --write / --load");
  if (o.blocks < 1 || o.per_shard < 1 || o.context < 1) usage("sizes must be positive");
  return o;
}

nlohmann::json hf_config(const ModelConfig& c) {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_size", c.hidden},
                      {"intermediate_size", c.intermediate},
                      {"num_hidden_layers", c.layers},
                      {"num_attention_heads", c.heads},
                      {"num_key_value_heads", c.kv_heads},
                      {"vocab_size", c.vocab},
                      {"max_position_embeddings", c.max_position},
                      {"rms_norm_eps", c.rms_eps},
                      {"rope_theta", c.rope.theta},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", false},
                      {"torch_dtype", "bfloat16"}};
  if (c.rope.llama3_factor > 1.0f)
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope.llama3_factor},
                         {"low_freq_factor", c.rope.low_freq_factor},
                         {"high_freq_factor", c.rope.high_freq_factor},
                         {"original_max_position_embeddings", c.rope.original_max_position}};
  return j;
}

// bf16 values drawn from 256 normal-ish values (std 0.02; norms around 1) by a xorshift stream.
void fill_bf16(std::vector<std::uint16_t>& v, std::uint64_t seed, bool norm) {
  std::uint16_t table[256];
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&] {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  };
  for (auto& t : table) {
    double u = 0;
    for (int k = 0; k < 4; ++k) u += static_cast<double>(next() >> 11) * 0x1.0p-53;
    const double x = (u - 2.0) * 1.7320508 * 0.02;
    t = f32_to_bf16(static_cast<float>(norm ? 1.0 + x : x));
  }
  for (std::size_t i = 0; i < v.size(); i += 8) {
    std::uint64_t r = next();
    for (std::size_t j = i; j < std::min(v.size(), i + 8); ++j, r >>= 8) v[j] = table[r & 255];
  }
}

int write_checkpoint(const Options& o) {
  const ModelConfig c = llama::known_config(o.shape);
  fs::create_directories(o.write);
  std::ofstream(fs::path(o.write) / "config.json") << hf_config(c).dump(2) << "\n";
  const std::int64_t q = c.heads * c.head_dim, kv = c.kv_heads * c.head_dim;
  const std::pair<BlockTensor, Shape> tensors[] = {{BlockTensor::InputNorm, {c.hidden}},
                                                   {BlockTensor::Q, {q, c.hidden}},
                                                   {BlockTensor::K, {kv, c.hidden}},
                                                   {BlockTensor::V, {kv, c.hidden}},
                                                   {BlockTensor::O, {c.hidden, q}},
                                                   {BlockTensor::PostNorm, {c.hidden}},
                                                   {BlockTensor::Gate, {c.intermediate, c.hidden}},
                                                   {BlockTensor::Up, {c.intermediate, c.hidden}},
                                                   {BlockTensor::Down, {c.hidden, c.intermediate}}};
  const std::int64_t shards = (o.blocks + o.per_shard - 1) / o.per_shard;
  nlohmann::json weight_map = nlohmann::json::object();
  std::uint64_t total = 0;
  std::vector<std::uint16_t> buf;
  for (std::int64_t sh = 0; sh < shards; ++sh) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05lld-of-%05lld.safetensors",
                  static_cast<long long>(sh + 1), static_cast<long long>(shards));
    nlohmann::json header = nlohmann::json::object();
    std::uint64_t off = 0;
    std::vector<std::pair<std::string, const Shape*>> order;
    for (std::int64_t b = sh * o.per_shard; b < std::min(o.blocks, (sh + 1) * o.per_shard); ++b)
      for (const auto& [t, shape] : tensors) {
        const std::string n = block_tensor_name(b, t);
        const std::uint64_t bytes = static_cast<std::uint64_t>(shape_numel(shape)) * 2;
        header[n] = {{"dtype", "BF16"}, {"shape", shape}, {"data_offsets", {off, off + bytes}}};
        off += bytes;
        order.emplace_back(n, &shape);
        weight_map[n] = name;
      }
    std::string h = header.dump();
    h.resize((h.size() + 7) / 8 * 8, ' ');
    std::ofstream f(fs::path(o.write) / name, std::ios::binary);
    const std::uint64_t hn = h.size();
    f.write(reinterpret_cast<const char*>(&hn), 8);
    f.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& [n, shape] : order) {
      buf.resize(static_cast<std::size_t>(shape_numel(*shape)));
      fill_bf16(buf, std::hash<std::string>{}(n), shape->size() == 1);
      f.write(reinterpret_cast<const char*>(buf.data()),
              static_cast<std::streamsize>(buf.size() * 2));
    }
    if (!f) throw std::runtime_error("write failed: " + std::string(name));
    total += off;
  }
  std::ofstream(fs::path(o.write) / "model.safetensors.index.json")
      << nlohmann::json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(1)
      << "\n";
  std::printf("{\"written_bytes\": %llu, \"shards\": %lld}\n",
              static_cast<unsigned long long>(total), static_cast<long long>(shards));
  return 0;
}

int load_span(const Options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  auto be = make_backend(o.device);
  auto src = open_model(o.load);
  llama::SpanExecutor span(*be, *src, 0, o.blocks, quant_from_name(o.quant));
  const auto t1 = std::chrono::steady_clock::now();
  llama::KvCache cache = span.make_cache(1, o.context);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const ModelConfig& c = span.config();
  const std::uint64_t kv_bytes = static_cast<std::uint64_t>(o.blocks) * 2 * o.context * c.kv_heads *
                                 c.head_dim * sizeof(float);
  nlohmann::json j = {{"quant", o.quant},
                      {"device", be->name()},
                      {"blocks", o.blocks},
                      {"load_seconds", std::chrono::duration<double>(t1 - t0).count()},
                      {"bytes_read", src->bytes_read()},
                      {"weight_bytes", span.weight_bytes()},
                      {"kv_cache_bytes", kv_bytes},
                      {"peak_rss_bytes", static_cast<std::uint64_t>(ru.ru_maxrss) * 1024}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    return o.write.empty() ? load_span(o) : write_checkpoint(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kwaai_span_load: %s\n", e.what());
    return 1;
  }
}
