#include "engine/model/model_source.hpp"

#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "engine/core/formats.hpp"
#include "engine/model/model_source_impl.hpp"

namespace kwaai::engine {

HostTensor ModelSource::load(const std::string& name, DType target) const {
  HostTensor t = load(name);
  if (t.dtype == target) return t;
  TensorView v{t.name, t.dtype, t.shape, t.bytes()};
  return convert_tensor(v, target);
}

std::unique_ptr<ModelSource> open_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return detail::open_hf_source(path);
  if (fs::is_regular_file(path, ec)) {
    if (path.ends_with(".gguf")) return detail::open_gguf_source(path);
    // A config.json or a .safetensors inside a HF folder: open the folder.
    if (path.ends_with("config.json") || path.ends_with(".safetensors")) {
      return detail::open_hf_source(fs::path(path).parent_path().string());
    }
    throw std::runtime_error("model '" + path + "': not a HF checkpoint folder or a .gguf file");
  }
  throw std::runtime_error("model '" + path + "' does not exist");
}

std::string block_tensor_name(std::int64_t block, BlockTensor which) {
  const std::string p = "model.layers." + std::to_string(block) + ".";
  switch (which) {
    case BlockTensor::InputNorm:
      return p + "input_layernorm.weight";
    case BlockTensor::Q:
      return p + "self_attn.q_proj.weight";
    case BlockTensor::K:
      return p + "self_attn.k_proj.weight";
    case BlockTensor::V:
      return p + "self_attn.v_proj.weight";
    case BlockTensor::O:
      return p + "self_attn.o_proj.weight";
    case BlockTensor::PostNorm:
      return p + "post_attention_layernorm.weight";
    case BlockTensor::Gate:
      return p + "mlp.gate_proj.weight";
    case BlockTensor::Up:
      return p + "mlp.up_proj.weight";
    case BlockTensor::Down:
      return p + "mlp.down_proj.weight";
    case BlockTensor::Router:
      return p + "block_sparse_moe.gate.weight";
    case BlockTensor::InputNormBias:
    case BlockTensor::PostNormBias:
    case BlockTensor::QBias:
    case BlockTensor::KBias:
    case BlockTensor::VBias:
    case BlockTensor::OBias:
    case BlockTensor::UpBias:
    case BlockTensor::DownBias:
      break;  // RMSNorm and Llama's projections have no bias
  }
  throw std::invalid_argument("block_tensor_name: a Llama-layout block has no such tensor");
}

namespace {

bool falcon_two_norms(const ModelConfig& c) {
  return c.falcon_new_arch && c.falcon_norms == 2;
}

// Falcon and Bloom share the transformer.h.{i} names (Bloom: never two norms).
std::string falcon_block_name(const ModelConfig& c, std::int64_t block, BlockTensor which) {
  const std::string in_norm = falcon_two_norms(c) ? "ln_attn" : "input_layernorm";
  const std::string post_norm = falcon_two_norms(c) ? "ln_mlp" : "post_attention_layernorm";
  // The module, and whether it is its bias or its weight.
  std::string module;
  bool bias = false;
  switch (which) {
    case BlockTensor::InputNormBias:
      bias = true;
      [[fallthrough]];
    case BlockTensor::InputNorm:
      module = in_norm;
      break;
    case BlockTensor::PostNormBias:
      bias = true;
      [[fallthrough]];
    case BlockTensor::PostNorm:
      module = post_norm;
      break;
    case BlockTensor::QBias:
    case BlockTensor::KBias:
    case BlockTensor::VBias:
      bias = true;
      [[fallthrough]];
    case BlockTensor::Q:
    case BlockTensor::K:
    case BlockTensor::V:
      module = "self_attention.query_key_value";
      break;
    case BlockTensor::OBias:
      bias = true;
      [[fallthrough]];
    case BlockTensor::O:
      module = "self_attention.dense";
      break;
    case BlockTensor::UpBias:
      bias = true;
      [[fallthrough]];
    case BlockTensor::Up:
      module = "mlp.dense_h_to_4h";
      break;
    case BlockTensor::DownBias:
      bias = true;
      [[fallthrough]];
    case BlockTensor::Down:
      module = "mlp.dense_4h_to_h";
      break;
    case BlockTensor::Gate:
    case BlockTensor::Router:
      throw std::invalid_argument("block_tensor_name: a falcon/bloom block has no such tensor");
  }
  return "transformer.h." + std::to_string(block) + "." + module + (bias ? ".bias" : ".weight");
}

}  // namespace

bool block_has_tensor(const ModelConfig& c, BlockTensor which) {
  switch (which) {
    case BlockTensor::InputNorm:
    case BlockTensor::Q:
    case BlockTensor::K:
    case BlockTensor::V:
    case BlockTensor::O:
      return true;
    case BlockTensor::InputNormBias:
      return c.is_falcon() || c.is_bloom();
    case BlockTensor::PostNorm:
      return !c.is_falcon() || falcon_two_norms(c) || !c.parallel_attn;
    case BlockTensor::PostNormBias:
      return c.is_bloom() || (c.is_falcon() && (falcon_two_norms(c) || !c.parallel_attn));
    case BlockTensor::QBias:
    case BlockTensor::KBias:
    case BlockTensor::VBias:
    case BlockTensor::OBias:
    case BlockTensor::UpBias:
    case BlockTensor::DownBias:
      return c.is_bloom();
    case BlockTensor::Gate:
      return !c.is_falcon() && !c.is_bloom() && c.experts == 0;
    case BlockTensor::Up:
    case BlockTensor::Down:
      return c.experts == 0;
    case BlockTensor::Router:
      return c.experts > 0;
  }
  return false;
}

std::string block_tensor_name(const ModelConfig& c, std::int64_t block, BlockTensor which) {
  if (!block_has_tensor(c, which))
    throw std::invalid_argument("block_tensor_name: a block of " + c.describe() +
                                " has no such tensor");
  return c.is_falcon() || c.is_bloom() ? falcon_block_name(c, block, which)
                                       : block_tensor_name(block, which);
}

std::string embed_tensor_name(const ModelConfig& c) {
  return c.is_falcon() || c.is_bloom() ? "transformer.word_embeddings.weight" : kEmbedName;
}
std::string final_norm_name(const ModelConfig& c) {
  return c.is_falcon() || c.is_bloom() ? "transformer.ln_f.weight" : kFinalNormName;
}
std::string final_norm_bias_name(const ModelConfig& c) {
  if (!c.is_falcon() && !c.is_bloom())
    throw std::invalid_argument("final_norm_bias_name: RMSNorm has no bias");
  return "transformer.ln_f.bias";
}

std::string expert_tensor_name(std::int64_t block, std::int64_t expert, BlockTensor which) {
  const std::string p = "model.layers." + std::to_string(block) + ".block_sparse_moe.experts." +
                        std::to_string(expert) + ".";
  switch (which) {
    case BlockTensor::Gate:
      return p + "w1.weight";
    case BlockTensor::Up:
      return p + "w3.weight";
    case BlockTensor::Down:
      return p + "w2.weight";
    default:
      throw std::invalid_argument("expert_tensor_name: experts have only Gate, Up and Down");
  }
}

DType weight_target_dtype(DType stored, bool is_matrix, Quant quant) {
  if (!is_matrix) return DType::F32;
  return quant.value_or(stored);
}

namespace {

TensorInfo info_checked(const ModelSource& src, const std::string& name, const Shape& want) {
  TensorInfo info = src.info(name);
  if (info.shape != want) {
    throw std::runtime_error("model '" + src.path() + "': tensor '" + name + "' has shape " +
                             shape_str(info.shape) + ", expected " + shape_str(want) +
                             " from the config (" + src.config().describe() + ")");
  }
  return info;
}

DType load_target(DType stored, const Shape& want, bool is_matrix, Quant quant) {
  DType target = weight_target_dtype(stored, is_matrix, quant);
  // A row that cannot be split into the target's blocks takes Q8_0 when it splits into 32-value
  // blocks (llama-quantize likewise falls back from a K-quant for such rows) and otherwise
  // stays in its stored dtype rather than failing the whole load (e.g. down_proj of a toy
  // model with intermediate 172).
  if (is_quantized(target) && !is_quantized(stored) &&
      want.back() % format_info(target).block_elems != 0) {
    target = want.back() % kQuantBlock == 0 ? DType::Q8_0 : stored;
  }
  return target;
}

HostTensor load_checked(const ModelSource& src, const std::string& name, const Shape& want,
                        bool is_matrix, Quant quant) {
  const TensorInfo info = info_checked(src, name, want);
  return src.load(name, load_target(info.dtype, want, is_matrix, quant));
}

}  // namespace

namespace {

void check_block(const ModelConfig& c, std::int64_t i) {
  if (i < 0 || i >= c.layers) {
    throw std::out_of_range("load_block: block " + std::to_string(i) + " outside [0, " +
                            std::to_string(c.layers) + ")");
  }
}

// The HF shape of a block tensor under the config (Gate/Up/Down: a dense MLP's or an expert's).
Shape block_tensor_shape(const ModelConfig& c, BlockTensor t) {
  const std::int64_t q_out = c.heads * c.head_dim;
  const std::int64_t kv_out = c.kv_heads * c.head_dim;
  switch (t) {
    case BlockTensor::InputNorm:
    case BlockTensor::PostNorm:
    case BlockTensor::InputNormBias:
    case BlockTensor::PostNormBias:
    case BlockTensor::OBias:
    case BlockTensor::DownBias:
      return {c.hidden};
    case BlockTensor::QBias:
      return {c.heads * c.head_dim};
    case BlockTensor::KBias:
    case BlockTensor::VBias:
      return {c.kv_heads * c.head_dim};
    case BlockTensor::UpBias:
      return {c.intermediate};
    case BlockTensor::Q:
      return {q_out, c.hidden};
    case BlockTensor::K:
    case BlockTensor::V:
      return {kv_out, c.hidden};
    case BlockTensor::O:
      return {c.hidden, q_out};
    case BlockTensor::Gate:
    case BlockTensor::Up:
      return {c.intermediate, c.hidden};
    case BlockTensor::Down:
      return {c.hidden, c.intermediate};
    case BlockTensor::Router:
      return {c.experts, c.hidden};
  }
  throw std::invalid_argument("load_block: bad tensor kind");
}

}  // namespace

HostTensor load_block_tensor(const ModelSource& src, std::int64_t i, BlockTensor t, Quant quant) {
  const ModelConfig& c = src.config();
  check_block(c, i);
  const bool moe = c.experts > 0;
  if (t == BlockTensor::Router && !moe)
    throw std::invalid_argument("load_block: a dense model (" + c.describe() + ") has no router");
  if (moe && (t == BlockTensor::Gate || t == BlockTensor::Up || t == BlockTensor::Down))
    throw std::invalid_argument("load_block: a MoE block's MLP is per expert (load_expert_tensor)");
  if ((c.is_falcon() || c.is_bloom()) &&
      (t == BlockTensor::Q || t == BlockTensor::K || t == BlockTensor::V))
    return std::move(load_block_qkv(src, i, quant)[t == BlockTensor::Q   ? 0
                                                   : t == BlockTensor::K ? 1
                                                                         : 2]);
  if (c.is_bloom() &&
      (t == BlockTensor::QBias || t == BlockTensor::KBias || t == BlockTensor::VBias))
    return std::move(load_block_qkv_bias(src, i)[t == BlockTensor::QBias   ? 0
                                                 : t == BlockTensor::KBias ? 1
                                                                           : 2]);
  const Shape s = block_tensor_shape(c, t);
  return load_checked(src, block_tensor_name(c, i, t), s, s.size() == 2,
                      t == BlockTensor::Router ? kNoQuant : quant);
}

namespace {

// Which head of the fused query_key_value holds query head h (part 0), or key / value head h
// (parts 1, 2). Falcon (HF FalconAttention._split_heads): kv_heads groups of (heads / kv_heads
// query heads, one key head, one value head); the 7B multi-query layout is the one-group case
// (all query heads, then k, then v). Query head g * r + j is group g's j-th, so each query head
// keeps the key/value head g = h / r, the GQA pairing the attention op uses. Bloom
// (BloomAttention._reshape): per head [q, k, v].
std::int64_t fused_head(const ModelConfig& c, int part, std::int64_t h) {
  if (c.is_bloom()) return 3 * h + part;
  const std::int64_t r = c.heads / c.kv_heads;
  if (part == 0) return (h / r) * (r + 2) + h % r;
  return h * (r + 2) + r + (part - 1);
}

// Splits a fused [(heads + 2 kv_heads) * head_dim, row] f32 tensor (row = 1 for the bias) into
// Q, K and V, converting the matrices to their load target.
std::array<HostTensor, 3> split_fused(const ModelConfig& c, const HostTensor& fused,
                                      std::int64_t row, DType stored, Quant quant, bool matrix) {
  const std::int64_t d = c.head_dim;
  const std::size_t row_bytes = static_cast<std::size_t>(row) * sizeof(float);
  std::array<HostTensor, 3> out;
  for (int part = 0; part < 3; ++part) {
    const std::int64_t heads = part == 0 ? c.heads : c.kv_heads;
    HostTensor& t = out[static_cast<std::size_t>(part)];
    t.name = fused.name + "[" + "qkv"[part] + "]";
    t.dtype = DType::F32;
    t.shape = matrix ? Shape{heads * d, row} : Shape{heads * d};
    t.data.resize(static_cast<std::size_t>(heads * d) * row_bytes);
    for (std::int64_t h = 0; h < heads; ++h)
      std::memcpy(
          t.data.data() + static_cast<std::size_t>(h * d) * row_bytes,
          fused.data.data() + static_cast<std::size_t>(fused_head(c, part, h) * d) * row_bytes,
          static_cast<std::size_t>(d) * row_bytes);
    if (!matrix) continue;
    const DType target = load_target(stored, t.shape, true, quant);
    if (target != DType::F32)
      t = convert_tensor(TensorView{t.name, t.dtype, t.shape, t.bytes()}, target);
  }
  return out;
}

}  // namespace

namespace {
// Falcon's / Bloom's fused query_key_value weight (row = hidden) or bias (row = 1) of block i,
// read once as f32, shape-checked and split.
std::array<HostTensor, 3> load_fused(const ModelSource& src, std::int64_t i, bool bias,
                                     Quant quant) {
  const ModelConfig& c = src.config();
  const std::string name = block_tensor_name(c, i, bias ? BlockTensor::QBias : BlockTensor::Q);
  const std::int64_t rows = (c.heads + 2 * c.kv_heads) * c.head_dim;
  const TensorInfo info = info_checked(src, name, bias ? Shape{rows} : Shape{rows, c.hidden});
  HostTensor fused = src.load(name, DType::F32);
  fused.name = name;
  return split_fused(c, fused, bias ? 1 : c.hidden, info.dtype, bias ? kNoQuant : quant, !bias);
}
}  // namespace

std::array<HostTensor, 3> load_block_qkv(const ModelSource& src, std::int64_t i, Quant quant) {
  const ModelConfig& c = src.config();
  check_block(c, i);
  if (!c.is_falcon() && !c.is_bloom())
    return {load_block_tensor(src, i, BlockTensor::Q, quant),
            load_block_tensor(src, i, BlockTensor::K, quant),
            load_block_tensor(src, i, BlockTensor::V, quant)};
  return load_fused(src, i, false, quant);
}

std::array<HostTensor, 3> load_block_qkv_bias(const ModelSource& src, std::int64_t i) {
  const ModelConfig& c = src.config();
  check_block(c, i);
  if (!c.is_bloom()) throw std::invalid_argument("load_block_qkv_bias: only Bloom has QKV biases");
  return load_fused(src, i, true, kNoQuant);
}

HostTensor load_expert_tensor(const ModelSource& src, std::int64_t i, std::int64_t e, BlockTensor t,
                              Quant quant) {
  const ModelConfig& c = src.config();
  check_block(c, i);
  if (e < 0 || e >= c.experts)
    throw std::out_of_range("load_block: expert " + std::to_string(e) + " outside [0, " +
                            std::to_string(c.experts) + ") of " + c.describe());
  return load_checked(src, expert_tensor_name(i, e, t), block_tensor_shape(c, t), true, quant);
}

BlockWeights load_block(const ModelSource& src, std::int64_t i, Quant quant) {
  BlockWeights b;
  b.index = i;
  auto get = [&](BlockTensor t) {
    return block_has_tensor(src.config(), t) ? load_block_tensor(src, i, t, quant) : HostTensor{};
  };
  b.input_norm = get(BlockTensor::InputNorm);
  auto qkv = load_block_qkv(src, i, quant);  // a fused tensor is read once
  b.q = std::move(qkv[0]);
  b.k = std::move(qkv[1]);
  b.v = std::move(qkv[2]);
  b.o = get(BlockTensor::O);
  b.post_norm = get(BlockTensor::PostNorm);
  b.gate = get(BlockTensor::Gate);
  b.up = get(BlockTensor::Up);
  b.down = get(BlockTensor::Down);
  return b;
}

std::vector<BlockWeights> load_blocks(const ModelSource& src, std::int64_t start, std::int64_t end,
                                      Quant quant) {
  const std::int64_t layers = src.config().layers;
  if (start < 0 || end > layers || start >= end) {
    throw std::out_of_range("load_blocks: range [" + std::to_string(start) + ", " +
                            std::to_string(end) + ") is not a non-empty part of [0, " +
                            std::to_string(layers) + ")");
  }
  std::vector<BlockWeights> out;
  out.reserve(static_cast<std::size_t>(end - start));
  for (std::int64_t i = start; i < end; ++i) out.push_back(load_block(src, i, quant));
  return out;
}

HostTensor load_embeddings(const ModelSource& src, Quant quant) {
  const ModelConfig& c = src.config();
  return load_checked(src, embed_tensor_name(c), {c.vocab, c.hidden}, true, quant);
}

HostTensor load_final_norm(const ModelSource& src) {
  return load_checked(src, final_norm_name(src.config()), {src.config().hidden}, false, kNoQuant);
}

HostTensor load_final_norm_bias(const ModelSource& src) {
  return load_checked(src, final_norm_bias_name(src.config()), {src.config().hidden}, false,
                      kNoQuant);
}

HostTensor load_lm_head(const ModelSource& src, Quant quant) {
  const ModelConfig& c = src.config();
  if (!c.tied_embeddings && src.has(kLmHeadName)) {
    return load_checked(src, kLmHeadName, {c.vocab, c.hidden}, true, quant);
  }
  return load_embeddings(src, quant);
}

}  // namespace kwaai::engine
