// The model source API: open a HF checkpoint folder or a .gguf file and get a ModelConfig plus
// tensors by their canonical HF names, in HF layout, whatever the file format:
//   model.embed_tokens.weight, model.norm.weight, lm_head.weight,
//   model.layers.{i}.input_layernorm.weight, model.layers.{i}.post_attention_layernorm.weight,
//   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight,
//   model.layers.{i}.mlp.{gate,up,down}_proj.weight
// GGUF tensors (blk.N.attn_q.weight, ...) are renamed and their Q/K rows un-permuted (see
// docs/model-files.md), so both sources give byte-identical blocks for the same weights.
//
// Loading is lazy: opening reads only headers; a tensor's bytes are touched when it is loaded,
// so loading blocks [start, end) reads only those blocks' pages (and, for sharded safetensors,
// opens only the shards holding them).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/config.hpp"
#include "engine/model/host_tensor.hpp"

namespace kwaai::engine {

struct TensorInfo {
  DType dtype = DType::F32;  // as stored (GGUF may give q8_0 / q4_0)
  Shape shape;               // HF layout: [out_features, in_features] for projections
};

class ModelSource {
 public:
  virtual ~ModelSource() = default;

  virtual const ModelConfig& config() const = 0;
  virtual std::string format() const = 0;  // "safetensors" or "gguf"
  virtual const std::string& path() const = 0;
  // Canonical HF names present in the source.
  virtual std::vector<std::string> names() const = 0;
  virtual bool has(const std::string& name) const = 0;
  // Throws std::out_of_range naming the tensor and the file when absent.
  virtual TensorInfo info(const std::string& name) const = 0;
  // The tensor as stored, in HF layout (owned copy; GGUF q/k are un-permuted here).
  virtual HostTensor load(const std::string& name) const = 0;
  // Same, converted to `target` (any format with from_f32) row by row through f32 when it
  // differs. Sources that map their files convert straight from the mapping and drop its pages
  // afterwards (no owned copy of the stored tensor, no mapped pages left in the RSS).
  virtual HostTensor load(const std::string& name, DType target) const;
  // Bytes of tensor data read through this source so far (what loading actually touched).
  virtual std::uint64_t bytes_read() const = 0;
};

// A folder with config.json + model.safetensors (or model.safetensors.index.json + shards),
// or a path to a .gguf file. Throws std::runtime_error with the path and reason.
std::unique_ptr<ModelSource> open_model(const std::string& path);

// ---- per-block convenience used by the Llama executor ----

// Router: Mixtral's block_sparse_moe.gate [experts, hidden]; a MoE block has no dense
// Gate/Up/Down but per-expert ones (expert_tensor_name). The norm biases are Falcon's
// LayerNorm biases; a Falcon block has no Gate (its MLP is up -> GELU -> down), its Q/K/V are
// row ranges of one fused query_key_value tensor, and PostNorm is ln_mlp (new layout, two
// norms) or post_attention_layernorm (old layout, sequential) or absent.
enum class BlockTensor {
  InputNorm,
  Q,
  K,
  V,
  O,
  PostNorm,
  Gate,
  Up,
  Down,
  Router,
  InputNormBias,
  PostNormBias,
  QBias,  // Bloom's linear biases (q/k/v: parts of the fused query_key_value.bias)
  KBias,
  VBias,
  OBias,
  UpBias,
  DownBias
};
// The Llama-layout name (model.layers.{block}....), what GGUF files map to.
std::string block_tensor_name(std::int64_t block, BlockTensor which);
// The name under the config's family (Falcon: transformer.h.{block}....; Q, K and V all name the
// fused query_key_value). Throws std::invalid_argument for a tensor the family's block lacks.
std::string block_tensor_name(const ModelConfig& c, std::int64_t block, BlockTensor which);
bool block_has_tensor(const ModelConfig& c, BlockTensor which);
// model.layers.{block}.block_sparse_moe.experts.{expert}.w1 / w3 / w2 (Gate / Up / Down).
std::string expert_tensor_name(std::int64_t block, std::int64_t expert, BlockTensor which);

inline constexpr const char* kEmbedName = "model.embed_tokens.weight";
inline constexpr const char* kFinalNormName = "model.norm.weight";
inline constexpr const char* kLmHeadName = "lm_head.weight";
// The family's names for the ends (Falcon: transformer.word_embeddings / transformer.ln_f).
std::string embed_tensor_name(const ModelConfig& c);
std::string final_norm_name(const ModelConfig& c);
std::string final_norm_bias_name(const ModelConfig& c);  // Falcon and Bloom
// Bloom's word_embeddings_layernorm, applied to the embedding before block 0.
inline constexpr const char* kBloomEmbedNormName = "transformer.word_embeddings_layernorm.weight";
inline constexpr const char* kBloomEmbedNormBiasName = "transformer.word_embeddings_layernorm.bias";

// The dtype a weight gets at load time: norm vectors are always f32 (rms_norm wants f32);
// 2-D weights keep their stored dtype under kNoQuant, else become q8_0/q4_0.
DType weight_target_dtype(DType stored, bool is_matrix, Quant quant);

struct BlockWeights {
  std::int64_t index = 0;
  HostTensor input_norm, q, k, v, o, post_norm, gate, up, down;  // HF shapes (Llama layout)
};

// Loads block `i`, checking every shape against the config (q [heads*hd, hidden],
// k/v [kv_heads*hd, hidden], o [hidden, heads*hd], gate/up [inter, hidden], down [hidden, inter],
// norms [hidden]); throws std::runtime_error naming the tensor, its shape and the expected one.
BlockWeights load_block(const ModelSource& src, std::int64_t i, Quant quant);
// One tensor of block `i`, with the same checks (what a loader that uploads tensor by tensor,
// holding one on the host at a time, calls).
// The Router is never quantized (llama.cpp keeps ffn_gate_inp as stored too: it is small and
// an error in it changes which experts run).
HostTensor load_block_tensor(const ModelSource& src, std::int64_t i, BlockTensor t, Quant quant);
// Q, K and V of block `i` (Falcon: the fused tensor read once and split by its layout).
std::array<HostTensor, 3> load_block_qkv(const ModelSource& src, std::int64_t i, Quant quant);
// Bloom: the fused query_key_value.bias split the same way, f32.
std::array<HostTensor, 3> load_block_qkv_bias(const ModelSource& src, std::int64_t i);
// Expert `e`'s Gate, Up or Down of MoE block `i`, with the dense MLP's shapes.
HostTensor load_expert_tensor(const ModelSource& src, std::int64_t i, std::int64_t e, BlockTensor t,
                              Quant quant);
// Blocks [start, end); throws std::out_of_range if the range is not inside [0, layers).
std::vector<BlockWeights> load_blocks(const ModelSource& src, std::int64_t start, std::int64_t end,
                                      Quant quant);
HostTensor load_embeddings(const ModelSource& src, Quant quant);  // [vocab, hidden]
HostTensor load_final_norm(const ModelSource& src);               // f32 [hidden]
HostTensor load_final_norm_bias(const ModelSource& src);          // f32 [hidden] (Falcon, Bloom)
// lm_head.weight, or the embeddings when tied (config.tied_embeddings or no lm_head present).
HostTensor load_lm_head(const ModelSource& src, Quant quant);

}  // namespace kwaai::engine
