// The model description shared by the HF (config.json) and GGUF loaders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/backend.hpp"  // RopeConfig

namespace kwaai::engine {

struct ModelConfig {
  std::string architecture = "llama";  // model_type / general.architecture
  std::int64_t hidden = 0;             // hidden_size
  std::int64_t intermediate = 0;       // intermediate_size
  std::int64_t layers = 0;             // num_hidden_layers
  std::int64_t heads = 0;              // num_attention_heads
  std::int64_t kv_heads = 0;           // num_key_value_heads (defaults to heads)
  std::int64_t head_dim = 0;           // head_dim, else hidden / heads
  std::int64_t vocab = 0;              // vocab_size
  std::int64_t max_position = 2048;    // max_position_embeddings / llama.context_length
  float rms_eps = 1e-5f;               // rms_norm_eps
  RopeConfig rope;                     // rope_theta + llama3 rope_scaling
  std::int64_t bos_id = 1;             // -1 when absent
  std::vector<std::int64_t> eos_ids;   // eos_token_id (int or list); may be empty
  bool tied_embeddings = false;        // tie_word_embeddings (or no lm_head / output tensor)
  // sliding_window (Mistral): each query attends to the last `sliding_window` positions, itself
  // included (HF's eager Mistral mask); 0 = full causal attention (absent or null).
  std::int64_t sliding_window = 0;
  // Mixtral's sparse MoE MLP: num_local_experts SwiGLU experts of `intermediate` width, of
  // which each token uses num_experts_per_tok (router softmax, top-k, renormalised); 0 = the
  // dense Llama MLP.
  std::int64_t experts = 0;
  std::int64_t experts_per_token = 0;
  // Falcon (model_type "falcon"; HF's FalconDecoderLayer): LayerNorm with bias instead of RMSNorm
  // (rms_eps holds layer_norm_epsilon), a GELU MLP of `intermediate` (ffn_hidden_size) width
  // instead of SwiGLU, a fused query_key_value projection, and attention and MLP in parallel
  // from the same residual. falcon_new_arch: 40B/180B's new_decoder_architecture (grouped KV,
  // the fused rows grouped per KV head, ln_attn + ln_mlp when falcon_norms == 2); otherwise the
  // 7B layout (multi-query: one KV head, rows [q heads | k | v], one input_layernorm).
  bool falcon_new_arch = false;
  bool parallel_attn = false;     // attention and MLP both read the block's input
  std::int64_t falcon_norms = 1;  // LayerNorms per parallel block: 1 shared, 2 (ln_attn, ln_mlp)
  // Bloom (model_type "bloom"; HF's BloomBlock): LayerNorms with bias (word_embeddings_layernorm
  // after the embedding too), biases on every linear layer, the fused query_key_value laid out
  // per head [heads, 3, head_dim], no rotary but ALiBi (alibi_max_bias 8), tanh-GELU MLP.
  float alibi_max_bias = 0.0f;  // > 0: ALiBi in attention (Bloom: 8)
  std::string torch_dtype;      // informational ("bfloat16", ...); empty if absent

  bool is_falcon() const { return architecture == "falcon"; }
  bool is_bloom() const { return architecture == "bloom"; }

  // Throws std::invalid_argument with the offending field(s) if the numbers are inconsistent
  // (non-positive sizes, heads % kv_heads != 0, odd head_dim, absurd sizes ...).
  void validate() const;
  std::string describe() const;  // one line for logs
};

// Parses a HF config.json text of a supported family (Llama 2/3/3.1/3.2, Mistral, Mixtral,
// TinyLlama; Falcon 7B and 40B/180B layouts; Bloom).
// `origin` (a path) is used in error messages. Validates before returning.
ModelConfig parse_hf_config(const std::string& json_text,
                            const std::string& origin = "config.json");
ModelConfig load_hf_config(const std::string& path);

}  // namespace kwaai::engine
