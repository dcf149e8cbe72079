#include "engine/model/config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace kwaai::engine {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw std::invalid_argument("config '" + origin + "': " + what);
}

std::int64_t get_int(const json& j, const char* key, const std::string& origin, std::int64_t dflt,
                     bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(origin, std::string("missing '") + key + "'");
    return dflt;
  }
  if (!it->is_number_integer())
    fail(origin, std::string("'") + key + "' is not an integer: " + it->dump());
  return it->get<std::int64_t>();
}

double get_num(const json& j, const char* key, const std::string& origin, double dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_number()) fail(origin, std::string("'") + key + "' is not a number: " + it->dump());
  return it->get<double>();
}

}  // namespace

void ModelConfig::validate() const {
  auto bad = [&](const std::string& what) {
    throw std::invalid_argument("invalid model config (" + describe() + "): " + what);
  };
  constexpr std::int64_t kMaxDim = 1 << 20;  // far above any real model's widths
  constexpr std::int64_t kMaxVocab = 1 << 24;
  if (hidden <= 0 || hidden > kMaxDim) bad("hidden size must be in (0, 2^20]");
  if (intermediate <= 0 || intermediate > kMaxDim) bad("intermediate size must be in (0, 2^20]");
  if (layers <= 0 || layers > 4096) bad("layer count must be in (0, 4096]");
  if (heads <= 0 || heads > 4096) bad("attention heads must be in (0, 4096]");
  if (kv_heads <= 0 || kv_heads > heads) bad("kv heads must be in (0, heads]");
  if (sliding_window < 0 || sliding_window > 0xFFFFFFFFll)
    bad("sliding window must be in [0, 2^32) (0: none)");
  if (heads % kv_heads != 0) bad("attention heads must be divisible by kv heads");
  if (experts < 0 || experts > 256) bad("expert count must be in [0, 256] (0: a dense MLP)");
  if (experts > 0 && (experts_per_token < 1 || experts_per_token > experts))
    bad("experts per token must be in [1, experts]");
  if (experts == 0 && experts_per_token != 0) bad("experts per token set without experts");
  if ((is_falcon() || is_bloom()) && experts > 0) bad("falcon and bloom configs have no experts");
  if (alibi_max_bias < 0.0f) bad("alibi max bias must be >= 0");
  if (head_dim <= 0 || head_dim > 4096 || head_dim % 2 != 0)
    bad("head_dim must be even and in (0, 4096]");
  if (vocab <= 0 || vocab > kMaxVocab) bad("vocab size must be in (0, 2^24]");
  if (max_position <= 0) bad("max position must be positive");
  if (!(rms_eps > 0.0f) || rms_eps > 1.0f) bad("rms eps must be in (0, 1]");
  if (!(rope.theta > 0.0f)) bad("rope theta must be positive");
  if (rope.llama3_factor > 1.0f) {
    if (!(rope.low_freq_factor > 0.0f) || !(rope.high_freq_factor > rope.low_freq_factor)) {
      bad("llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor");
    }
    if (rope.original_max_position <= 0)
      bad("llama3 rope scaling needs original_max_position_embeddings > 0");
  }
  if (bos_id >= vocab) bad("bos id outside the vocabulary");
  for (auto e : eos_ids) {
    if (e < 0 || e >= vocab) bad("eos id " + std::to_string(e) + " outside the vocabulary");
  }
}

std::string ModelConfig::describe() const {
  std::ostringstream o;
  o << architecture << " hidden=" << hidden << " inter=" << intermediate << " layers=" << layers
    << " heads=" << heads << "/" << kv_heads << " head_dim=" << head_dim << " vocab=" << vocab
    << " ctx=" << max_position << " eps=" << rms_eps << " theta=" << rope.theta;
  if (sliding_window > 0) o << " window=" << sliding_window;
  if (experts > 0) o << " experts=" << experts_per_token << "/" << experts;
  if (is_bloom()) o << " bloom(alibi " << alibi_max_bias << ")";
  if (is_falcon())
    o << " falcon(" << (falcon_new_arch ? "new" : "7b") << ", " << falcon_norms << " norm"
      << (falcon_norms > 1 ? "s" : "") << (parallel_attn ? ", parallel" : "") << ")";
  if (rope.llama3_factor > 1.0f) {
    o << " llama3(factor=" << rope.llama3_factor << ", low=" << rope.low_freq_factor
      << ", high=" << rope.high_freq_factor << ", orig=" << rope.original_max_position << ")";
  }
  o << (tied_embeddings ? " tied" : " untied");
  return o.str();
}

namespace {
// The fields every family reads the same way: bos/eos ids, the dtype, then validation.
ModelConfig finish(const json& j, ModelConfig c, const std::string& origin) {
  if (auto it = j.find("torch_dtype"); it != j.end() && it->is_string())
    c.torch_dtype = it->get<std::string>();
  c.bos_id = get_int(j, "bos_token_id", origin, c.bos_id, false);
  if (auto it = j.find("eos_token_id"); it != j.end() && !it->is_null()) {
    c.eos_ids.clear();  // the file's ids replace a family default
    if (it->is_number_integer()) {
      c.eos_ids.push_back(it->get<std::int64_t>());
    } else if (it->is_array()) {
      for (const auto& e : *it) {
        if (!e.is_number_integer()) fail(origin, "eos_token_id entries must be integers");
        c.eos_ids.push_back(e.get<std::int64_t>());
      }
    } else {
      fail(origin, "eos_token_id must be an integer or a list of integers");
    }
  }

  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    fail(origin, e.what());
  }
  return c;
}

// head_dim = hidden / heads for the families whose config has no head_dim (Falcon, Bloom);
// `heads_key` names the field in errors.
void head_dim_from_hidden(ModelConfig& c, const char* heads_key, const std::string& origin) {
  if (c.heads <= 0) fail(origin, std::string(heads_key) + " must be positive");
  if (c.hidden % c.heads != 0)
    fail(origin, "hidden_size " + std::to_string(c.hidden) + " is not divisible by " +
                     std::to_string(c.heads) + " heads");
  c.head_dim = c.hidden / c.heads;
}

// HF 4.43.2 FalconConfig / FalconDecoderLayer. What the block code does not compute (ALiBi,
// linear biases, other activations, rope scaling, the interleaved per-head fused QKV of
// non-multi-query old-layout checkpoints) is refused by name.
ModelConfig parse_falcon(const json& j, const std::string& origin) {
  ModelConfig c;
  c.architecture = "falcon";
  if (j.value("alibi", false))
    fail(origin, "falcon with alibi=true is not supported (rotary only)");
  if (j.value("bias", false))
    fail(origin, "falcon with bias=true (linear biases) is not supported");
  if (auto it = j.find("activation");
      it != j.end() && it->is_string() && it->get<std::string>() != "gelu")
    fail(origin, "falcon activation '" + it->get<std::string>() + "' is not supported (gelu)");
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null())
    fail(origin, "falcon rope_scaling is not supported");
  c.hidden = get_int(j, "hidden_size", origin, 4544, false);
  c.heads = get_int(j, "num_attention_heads", origin, 71, false);
  c.layers = get_int(j, "num_hidden_layers", origin, 32, false);
  head_dim_from_hidden(c, "num_attention_heads", origin);
  c.intermediate = get_int(j, "ffn_hidden_size", origin, 4 * c.hidden, false);
  c.vocab = get_int(j, "vocab_size", origin, 65024, false);
  c.max_position = get_int(j, "max_position_embeddings", origin, 2048, false);
  c.rms_eps = static_cast<float>(get_num(j, "layer_norm_epsilon", origin, 1e-5));
  c.rope.theta = static_cast<float>(get_num(j, "rope_theta", origin, 10000.0));
  c.tied_embeddings = j.value("tie_word_embeddings", true);
  c.bos_id = 11;
  c.eos_ids = {11};
  c.falcon_new_arch = j.value("new_decoder_architecture", false);
  c.parallel_attn = j.value("parallel_attn", true);
  if (c.falcon_new_arch) {
    // FalconModel sets num_ln_in_parallel_attn to 2 when it is null (as in the real 40B config).
    c.kv_heads = get_int(j, "num_kv_heads", origin, c.heads, false);
    c.falcon_norms = get_int(j, "num_ln_in_parallel_attn", origin, 2, false);
    if (c.falcon_norms != 1 && c.falcon_norms != 2)
      fail(origin, "num_ln_in_parallel_attn must be 1 or 2");
    if (!c.parallel_attn)
      fail(origin, "falcon new_decoder_architecture without parallel_attn is not supported");
  } else {
    // The old layout ignores num_kv_heads: multi-query means exactly one KV head.
    if (!j.value("multi_query", true))
      fail(origin,
           "falcon with multi_query=false (the per-head interleaved fused QKV) is not supported");
    c.kv_heads = 1;
    c.falcon_norms = 1;
  }
  return finish(j, c, origin);
}

// HF 4.43.2 BloomConfig / BloomBlock. The old names (n_embed, n_head, n_layer) are what the
// real bigscience configs use; HF maps num_attention_heads / num_hidden_layers onto them.
ModelConfig parse_bloom(const json& j, const std::string& origin) {
  ModelConfig c;
  c.architecture = "bloom";
  if (j.value("apply_residual_connection_post_layernorm", false))
    fail(origin, "bloom with apply_residual_connection_post_layernorm=true is not supported");
  auto either = [&](const char* a, const char* b, std::int64_t dflt) {
    return j.contains(a) && !j.at(a).is_null() ? get_int(j, a, origin, dflt, false)
                                               : get_int(j, b, origin, dflt, false);
  };
  c.hidden = either("hidden_size", "n_embed", 64);
  c.heads = either("n_head", "num_attention_heads", 8);
  c.layers = either("n_layer", "num_hidden_layers", 2);
  head_dim_from_hidden(c, "n_head", origin);
  c.kv_heads = c.heads;
  c.intermediate = 4 * c.hidden;  // BloomMLP: dense_h_to_4h
  c.vocab = get_int(j, "vocab_size", origin, 250880, false);
  // ALiBi has no position table; seq_length (the training context) bounds the cache instead.
  c.max_position = get_int(j, "seq_length", origin, 2048, false);
  c.rms_eps = static_cast<float>(get_num(j, "layer_norm_epsilon", origin, 1e-5));
  c.tied_embeddings = j.value("tie_word_embeddings", true);
  c.alibi_max_bias = 8.0f;
  c.bos_id = 1;
  c.eos_ids = {2};
  return finish(j, c, origin);
}

ModelConfig parse_impl(const std::string& json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(origin, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(origin, "top level is not an object");
  ModelConfig c;
  c.bos_id = -1;  // Llama-family configs without bos_token_id have none
  if (auto it = j.find("model_type"); it != j.end() && it->is_string())
    c.architecture = it->get<std::string>();
  if (c.architecture == "falcon") return parse_falcon(j, origin);
  if (c.architecture == "bloom") return parse_bloom(j, origin);
  // Llama-family decoders share one attention block (Mixtral swaps the MLP for a sparse MoE);
  // anything else (biases, other norms) would silently compute the wrong thing, so it is
  // refused up front.
  if (c.architecture != "llama" && c.architecture != "mistral" && c.architecture != "mixtral") {
    fail(origin, "model_type '" + c.architecture +
                     "' is not supported (llama, mistral, mixtral, falcon, bloom)");
  }
  if (auto it = j.find("hidden_act");
      it != j.end() && it->is_string() && it->get<std::string>() != "silu") {
    fail(origin, "hidden_act '" + it->get<std::string>() + "' is not supported (silu)");
  }
  if (j.value("attention_bias", false) || j.value("mlp_bias", false)) {
    fail(origin, "attention/mlp biases are not supported");
  }
  c.hidden = get_int(j, "hidden_size", origin, 0, true);
  c.intermediate = get_int(j, "intermediate_size", origin, 0, true);
  c.layers = get_int(j, "num_hidden_layers", origin, 0, true);
  c.heads = get_int(j, "num_attention_heads", origin, 0, true);
  c.kv_heads = get_int(j, "num_key_value_heads", origin, c.heads, false);
  if (c.heads <= 0) fail(origin, "num_attention_heads must be positive");
  c.head_dim = get_int(j, "head_dim", origin, c.hidden / c.heads, false);
  if (!j.contains("head_dim") && c.hidden % c.heads != 0) {
    fail(origin, "hidden_size " + std::to_string(c.hidden) + " is not divisible by " +
                     std::to_string(c.heads) + " heads and no head_dim is given");
  }
  c.vocab = get_int(j, "vocab_size", origin, 0, true);
  c.max_position = get_int(j, "max_position_embeddings", origin, 2048, false);
  c.rms_eps = static_cast<float>(get_num(j, "rms_norm_eps", origin, 1e-6));
  c.rope.theta = static_cast<float>(get_num(j, "rope_theta", origin, 10000.0));
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  // Llama configs have no sliding window; Mistral's is an int or null (full attention).
  c.sliding_window = get_int(j, "sliding_window", origin, 0, false);
  if (c.architecture == "mixtral") {
    c.experts = get_int(j, "num_local_experts", origin, 8, false);
    c.experts_per_token = get_int(j, "num_experts_per_tok", origin, 2, false);
  }
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) fail(origin, "rope_scaling is not an object");
    std::string type = it->value("rope_type", it->value("type", std::string()));
    if (type == "llama3") {
      c.rope.llama3_factor = static_cast<float>(get_num(*it, "factor", origin, 0.0));
      c.rope.low_freq_factor = static_cast<float>(get_num(*it, "low_freq_factor", origin, 1.0));
      c.rope.high_freq_factor = static_cast<float>(get_num(*it, "high_freq_factor", origin, 4.0));
      c.rope.original_max_position =
          get_int(*it, "original_max_position_embeddings", origin, 8192, false);
      if (!(c.rope.llama3_factor >= 1.0f)) fail(origin, "rope_scaling.factor must be >= 1");
    } else if (type != "default") {
      // linear / dynamic / yarn change the positions or frequencies in ways the RoPE op does not
      // implement: refusing beats generating subtly wrong text.
      fail(origin, "rope_scaling type '" + type + "' is not supported (llama3)");
    }
  }
  return finish(j, c, origin);
}
}  // namespace

ModelConfig parse_hf_config(const std::string& json_text, const std::string& origin) {
  try {
    return parse_impl(json_text, origin);
  } catch (const json::exception& e) {
    // Wrong JSON types inside otherwise valid JSON (e.g. "tie_word_embeddings": "yes").
    fail(origin, std::string("unexpected value type: ") + e.what());
  }
}

ModelConfig load_hf_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open config '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_hf_config(ss.str(), path);
}

}  // namespace kwaai::engine
