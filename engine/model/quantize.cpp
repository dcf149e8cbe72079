#include "engine/model/quantize.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <vector>

#include "engine/core/formats.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/gguf_writer.hpp"
#include "engine/model/host_tensor.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/model_source_impl.hpp"
#include "engine/model/tokenizer.hpp"

namespace kwaai::engine {

namespace {

struct MixRow {
  QuantMix mix;
  const char* name;
  DType base;
  std::uint32_t file_type;  // LLAMA_FTYPE_MOSTLY_*
  bool more_bits;           // an _M mix
};

constexpr MixRow kMixes[] = {
    {QuantMix::Q8_0, "q8_0", DType::Q8_0, 7, false},
    {QuantMix::Q4_0, "q4_0", DType::Q4_0, 2, false},
    {QuantMix::Q4_K_S, "q4_k_s", DType::Q4_K, 14, false},
    {QuantMix::Q4_K_M, "q4_k_m", DType::Q4_K, 15, true},
    {QuantMix::Q5_K_S, "q5_k_s", DType::Q5_K, 16, false},
    {QuantMix::Q5_K_M, "q5_k_m", DType::Q5_K, 17, true},
    {QuantMix::Q6_K, "q6_k", DType::Q6_K, 18, false},
};

const MixRow& row_of(QuantMix m) {
  for (const auto& r : kMixes)
    if (r.mix == m) return r;
  throw std::invalid_argument("unknown quantization mix");
}

bool use_more_bits(std::int64_t i, std::int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// Block index of "blk.N.<rest>", -1 otherwise; `rest` gets the suffix.
std::int64_t block_of(const std::string& name, std::string& rest) {
  if (!name.starts_with("blk.")) return -1;
  const auto dot = name.find('.', 4);
  if (dot == std::string::npos) return -1;
  try {
    const std::int64_t i = std::stoll(name.substr(4, dot - 4));
    rest = name.substr(dot + 1);
    return i;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

QuantMix quant_mix_from_name(std::string_view name) {
  if (name == "q4_k") return QuantMix::Q4_K_S;
  if (name == "q5_k") return QuantMix::Q5_K_S;
  for (const auto& r : kMixes)
    if (name == r.name) return r.mix;
  throw std::invalid_argument("unknown quantization type '" + std::string(name) + "' (" +
                              quant_mix_choices() + ")");
}

std::string quant_mix_name(QuantMix m) {
  return row_of(m).name;
}

std::string quant_mix_choices() {
  std::string s;
  for (const auto& r : kMixes) s += (s.empty() ? "" : " | ") + std::string(r.name);
  return s;
}

std::uint32_t quant_mix_file_type(QuantMix m) {
  return row_of(m).file_type;
}

DType quant_mix_type(QuantMix m, const std::string& name, const Shape& shape, DType stored,
                     std::int64_t n_layers, bool has_output) {
  if (shape.size() < 2) return stored;  // 3-D: a MoE file's stacked experts, rows of the last
  const MixRow& r = row_of(m);
  DType t = r.base;
  std::string rest;
  const std::int64_t layer = block_of(name, rest);
  // The MoE router stays as stored, as llama-quantize leaves ffn_gate_inp.
  if (layer >= 0 && rest == "ffn_gate_inp.weight") return stored;
  const bool head = name == "output.weight" || (!has_output && name == "token_embd.weight");
  if (head) {
    // llama.cpp: the output tensor is Q6_K unless the whole file is Q8_0.
    t = m == QuantMix::Q8_0 ? DType::Q8_0 : DType::Q6_K;
  } else if (layer >= 0 && rest == "attn_v.weight") {
    if (r.more_bits && use_more_bits(layer, n_layers)) t = DType::Q6_K;
    // 70B (80 layers, 8 query heads per KV head): attn_v is 8x smaller than attn_q.
    if (n_layers == 80 && t == DType::Q4_K) t = DType::Q5_K;
  } else if (layer >= 0 && rest == "ffn_down.weight") {
    if (r.more_bits && use_more_bits(layer, n_layers)) t = DType::Q6_K;
  }
  const std::int64_t cols = shape.back();
  if (cols % format_info(t).block_elems != 0)
    t = cols % kQuantBlock == 0 ? DType::Q8_0 : DType::F16;
  return t;
}

QuantizeReport quantize_gguf(const std::string& in, const std::string& out, QuantMix mix,
                             int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  const GgufFile src(in);
  const GgufHeader& h = src.header();
  std::string arch = "llama";
  if (const GgufValue* a = h.find("general.architecture")) arch = a->as_string();
  std::int64_t n_layers = 0;
  if (const GgufValue* b = h.find(arch + ".block_count")) n_layers = b->as_int();
  const bool has_output = src.find("output.weight") != nullptr;

  GgufWriter w(h.alignment);
  for (const auto& [key, value] : h.kv) {
    if (key == "general.alignment" || key == "general.file_type" ||
        key == "general.quantization_version")
      continue;
    w.add_value(key, value);
  }
  w.add_u32("general.file_type", quant_mix_file_type(mix));
  w.add_u32("general.quantization_version", 2);  // ggml's QK_K layout version, as llama.cpp writes

  std::vector<DType> target;
  QuantizeReport rep;
  for (const auto& t : h.tensors) {
    target.push_back(quant_mix_type(mix, t.name, t.shape, t.dtype, n_layers, has_output));
    w.add_tensor(t.name, target.back(), t.shape);
  }
  w.begin(out);
  for (std::size_t i = 0; i < h.tensors.size(); ++i) {
    const GgufTensorInfo& t = h.tensors[i];
    const TensorView v = src.view(t.name);
    const DType to = target[i];
    rep.bytes_in += v.data.size();
    ++rep.count[to];
    ++rep.tensors;
    if (to == v.dtype) {
      w.write_tensor(v.data);
      rep.bytes_out += v.data.size();
      continue;
    }
    const HostTensor conv = convert_tensor(v, to, threads);  // rows through f32, threaded
    w.write_tensor(conv.bytes());
    rep.bytes_out += conv.data.size();
  }
  w.finish();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

QuantizeReport quantize_hf(const std::string& dir, const std::string& out, QuantMix mix,
                           int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto src = open_model(dir);
  const ModelConfig& c = src->config();
  auto refuse = [&](const std::string& why) {
    throw std::runtime_error("quantize: " + dir + ": " + why);
  };
  if (src->format() != "safetensors") refuse("not an HF checkpoint folder");
  if (c.is_falcon() || c.is_bloom())
    refuse("GGUF export covers the Llama family only (Llama, Mistral, Mixtral; " + c.describe() +
           ")");
  if (c.sliding_window > 0) refuse("a llama GGUF has no sliding window (" + c.describe() + ")");
  if (c.rope.llama3_factor > 1.0f)
    refuse("Llama-3 rope scaling goes into GGUF as a rope_freqs tensor, which is not written");
  const auto tok = Tokenizer::from_model_dir(dir);
  if (!tok) refuse("no tokenizer.json (the GGUF file carries the tokenizer)");

  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", std::filesystem::path(dir).filename().string());
  w.add_u32("general.file_type", quant_mix_file_type(mix));
  w.add_u32("general.quantization_version", 2);
  auto u32 = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
  w.add_u32("llama.context_length", u32(c.max_position));
  w.add_u32("llama.embedding_length", u32(c.hidden));
  w.add_u32("llama.block_count", u32(c.layers));
  w.add_u32("llama.feed_forward_length", u32(c.intermediate));
  w.add_u32("llama.attention.head_count", u32(c.heads));
  w.add_u32("llama.attention.head_count_kv", u32(c.kv_heads));
  if (c.head_dim * c.heads != c.hidden) {
    w.add_u32("llama.attention.key_length", u32(c.head_dim));
    w.add_u32("llama.attention.value_length", u32(c.head_dim));
  }
  w.add_u32("llama.rope.dimension_count", u32(c.head_dim));
  w.add_f32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  w.add_f32("llama.rope.freq_base", c.rope.theta);
  w.add_u32("llama.vocab_size", u32(c.vocab));
  if (c.experts > 0) {
    w.add_u32("llama.expert_count", u32(c.experts));
    w.add_u32("llama.expert_used_count", u32(c.experts_per_token));
  }
  tok->write_gguf_metadata(w);

  // llama.cpp's order: embeddings, the blocks, the final norm, the head (when not tied). Each
  // entry loads its tensor as stored; a MoE block's experts are stacked into one
  // [experts, rows, cols] ffn_*_exps tensor per projection, as llama.cpp writes Mixtral.
  struct Entry {
    std::string gguf;
    Shape shape;
    DType stored;
    std::function<HostTensor()> load;
  };
  std::vector<Entry> entries;
  auto plain = [&](const std::string& hf) {
    const TensorInfo info = src->info(hf);
    entries.push_back({detail::gguf_tensor_name(hf), info.shape, info.dtype, [&src, hf, &c] {
                         HostTensor t = src->load(hf);
                         std::int64_t heads = 0;
                         if (hf.ends_with("self_attn.q_proj.weight")) heads = c.heads;
                         if (hf.ends_with("self_attn.k_proj.weight")) heads = c.kv_heads;
                         if (heads > 0) detail::permute_qk_rows(t.data, heads, c.head_dim, true);
                         return t;
                       }});
  };
  plain(kEmbedName);
  for (std::int64_t i = 0; i < c.layers; ++i) {
    for (BlockTensor t : {BlockTensor::InputNorm, BlockTensor::Q, BlockTensor::K, BlockTensor::V,
                          BlockTensor::O, BlockTensor::PostNorm})
      plain(block_tensor_name(i, t));
    if (c.experts == 0) {
      for (BlockTensor t : {BlockTensor::Gate, BlockTensor::Up, BlockTensor::Down})
        plain(block_tensor_name(i, t));
      continue;
    }
    plain(block_tensor_name(i, BlockTensor::Router));
    for (const auto& [kind, stem] :
         {std::pair{BlockTensor::Gate, "ffn_gate_exps"}, std::pair{BlockTensor::Up, "ffn_up_exps"},
          std::pair{BlockTensor::Down, "ffn_down_exps"}}) {
      const BlockTensor t = kind;  // a structured binding cannot be captured before C++20 (clang)
      const TensorInfo e0 = src->info(expert_tensor_name(i, 0, t));
      Shape stacked = e0.shape;
      stacked.insert(stacked.begin(), c.experts);
      entries.push_back({"blk." + std::to_string(i) + "." + stem + ".weight", stacked, e0.dtype,
                         [&src, &c, i, t, stacked] {
                           HostTensor all;
                           all.name = expert_tensor_name(i, 0, t) + " (stacked)";
                           all.shape = stacked;
                           for (std::int64_t e = 0; e < c.experts; ++e) {
                             HostTensor one = src->load(expert_tensor_name(i, e, t));
                             all.dtype = one.dtype;
                             all.data.insert(all.data.end(), one.data.begin(), one.data.end());
                           }
                           return all;
                         }});
    }
  }
  plain(kFinalNormName);
  const bool has_output = !c.tied_embeddings && src->has(kLmHeadName);
  if (has_output) plain(kLmHeadName);

  std::vector<DType> target;
  for (const Entry& e : entries) {
    // Norms go to f32 and the router too (what llama.cpp's converter writes); matrices by the mix.
    DType t = DType::F32;
    if (e.shape.size() >= 2 && !e.gguf.ends_with("ffn_gate_inp.weight"))
      t = quant_mix_type(mix, e.gguf, e.shape, e.stored, c.layers, has_output);
    target.push_back(t);
    w.add_tensor(e.gguf, t, e.shape);
  }
  QuantizeReport rep;
  w.begin(out);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const HostTensor t = entries[i].load();  // one tensor (or expert stack) on the host at a time
    rep.bytes_in += t.data.size();
    ++rep.count[target[i]];
    ++rep.tensors;
    if (t.dtype == target[i]) {
      w.write_tensor(t.bytes());
      rep.bytes_out += t.data.size();
      continue;
    }
    const HostTensor conv =
        convert_tensor(TensorView{t.name, t.dtype, t.shape, t.bytes()}, target[i], threads);
    w.write_tensor(conv.bytes());
    rep.bytes_out += conv.data.size();
  }
  w.finish();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace kwaai::engine
