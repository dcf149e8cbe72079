// Writes a Llama-shaped GGUF file of random weights that both kwaainet and llama.cpp load, for
// side-by-side benchmarks on the same bytes (bench/vs_llamacpp.sh):
//   kwaai_make_gguf --shape llama-3-8b --layers 4 --type q4_0 --out /tmp/l3-4b-q4_0.gguf
// The weights come from engine/llama's SyntheticSource (a trained model's spread, every block
// and both ends), the vocabulary is a made-up SentencePiece-style list (<unk>, <s>, </s>, the
// 256 byte tokens, then "▁w<i>") of the shape's size, so llama.cpp's "llama" tokenizer accepts
// it. Nothing here is read by kwaainet except through the GGUF reader.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "engine/core/formats.hpp"
#include "engine/llama/llama_config.hpp"
#include "engine/llama/synthetic_source.hpp"
#include "engine/model/gguf_writer.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/model_source_impl.hpp"

namespace {

using namespace kwaai::engine;

struct Options {
  std::string shape = "llama-3-8b", type = "q4_0", out;
  std::int64_t layers = 4;
  std::uint64_t seed = 1;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "kwaai_make_gguf: %s\nusage: kwaai_make_gguf --out FILE [--shape llama-3-8b|"
               "llama-2-7b|llama-3-70b|tinyllama-1.1b|stories260k] [--layers N] [--type "
               "f16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_m] "
               "[--seed N]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const std::string v = argv[++i];
    if (a == "--shape")
      o.shape = v;
    else if (a == "--type")
      o.type = v;
    else if (a == "--out")
      o.out = v;
    else if (a == "--layers")
      o.layers = std::stoll(v);
    else if (a == "--seed")
      o.seed = std::stoull(v);
    else
      usage(("unknown flag " + a).c_str());
  }
  if (o.out.empty()) usage("--out is required");
  if (o.type != "f16" && o.type != "q8_0" && o.type != "q4_0" && o.type != "q4_k" &&
      o.type != "q5_k" && o.type != "q6_k" && o.type != "q4_k_m")
    usage("--type: f16, q8_0, q4_0, q4_k, q5_k, q6_k or q4_k_m");
  return o;
}

// llama.cpp's LLAMA_FTYPE for a whole-model type: MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7,
// MOSTLY_Q4_K_S 14, MOSTLY_Q4_K_M 15, MOSTLY_Q5_K_S 16, MOSTLY_Q6_K 18.
std::uint32_t file_type(const std::string& type) {
  if (type == "f16") return 1;
  if (type == "q4_0") return 2;
  if (type == "q8_0") return 7;
  if (type == "q4_k") return 14;
  if (type == "q4_k_m") return 15;
  if (type == "q5_k") return 16;
  return 18;
}

std::string gguf_name(const std::string& hf) {
  std::string g = detail::gguf_tensor_name(hf);
  if (g.empty()) throw std::runtime_error("no GGUF name for " + hf);
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    ModelConfig cfg = llama::known_config(o.shape);
    cfg.layers = o.layers > 0 ? std::min(o.layers, cfg.layers) : cfg.layers;
    // q4_k_m: Q4_K matrices with attn_v, ffn_down and the LM head in Q6_K, the tensors
    // llama-quantize's Q4_K_M gives more bits (it does so for half of the attn_v / ffn_down
    // layers; all of them here, which is what matters for reading both types from one file).
    const bool mix = o.type == "q4_k_m";
    const DType dt = dtype_from_name(mix ? "q4_k" : o.type);
    const llama::SyntheticSource src(cfg, dt, o.seed);
    const llama::SyntheticSource src6(cfg, DType::Q6_K, o.seed);
    auto more_bits = [&](const std::string& n) {
      return mix && (n.find("v_proj") != std::string::npos ||
                     n.find("down_proj") != std::string::npos || n == kLmHeadName);
    };
    auto source_for = [&](const std::string& n) -> const llama::SyntheticSource& {
      return more_bits(n) ? src6 : src;
    };

    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("general.name", o.shape + "-synthetic-" + std::to_string(cfg.layers) + "L");
    w.add_u32("general.file_type", file_type(o.type));
    w.add_u32("llama.context_length", static_cast<std::uint32_t>(cfg.max_position));
    w.add_u32("llama.embedding_length", static_cast<std::uint32_t>(cfg.hidden));
    w.add_u32("llama.block_count", static_cast<std::uint32_t>(cfg.layers));
    w.add_u32("llama.feed_forward_length", static_cast<std::uint32_t>(cfg.intermediate));
    w.add_u32("llama.attention.head_count", static_cast<std::uint32_t>(cfg.heads));
    w.add_u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(cfg.kv_heads));
    w.add_u32("llama.rope.dimension_count", static_cast<std::uint32_t>(cfg.head_dim));
    w.add_f32("llama.attention.layer_norm_rms_epsilon", cfg.rms_eps);
    w.add_f32("llama.rope.freq_base", cfg.rope.theta);
    w.add_u32("llama.vocab_size", static_cast<std::uint32_t>(cfg.vocab));

    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<std::int32_t>
        types;  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
    tokens = {"<unk>", "<s>", "</s>"};
    types = {2, 3, 3};
    for (int b = 0; b < 256 && static_cast<std::int64_t>(tokens.size()) < cfg.vocab; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      tokens.emplace_back(buf);
      types.push_back(6);
    }
    while (static_cast<std::int64_t>(tokens.size()) < cfg.vocab) {
      tokens.push_back("\xe2\x96\x81w" + std::to_string(tokens.size()));
      types.push_back(1);
    }
    for (std::size_t i = 0; i < tokens.size(); ++i) scores.push_back(-static_cast<float>(i));
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_strings("tokenizer.ggml.tokens", tokens);
    w.add_f32s("tokenizer.ggml.scores", scores);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);

    const std::vector<std::string> names = src.names();
    for (const auto& n : names) {
      const TensorInfo t = source_for(n).info(n);
      w.add_tensor(gguf_name(n), t.dtype, t.shape);
    }
    w.begin(o.out);
    for (const auto& n : names) {
      const HostTensor t = source_for(n).load(n);
      w.write_tensor(t.bytes());
    }
    w.finish();
    std::printf("%s: %s, %lld layers, %s\n", o.out.c_str(), o.shape.c_str(),
                static_cast<long long>(cfg.layers), o.type.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kwaai_make_gguf: %s\n", e.what());
    return 1;
  }
}
