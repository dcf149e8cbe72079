// ModelSource over a llama.cpp GGUF file: llama.* metadata -> ModelConfig, GGUF tensor names ->
// HF names, and the Q/K row un-permutation.
//
// Why un-permute: llama.cpp's HF->GGUF converter reorders the rows of q_proj/k_proj inside each
// head so that its interleaved RoPE (pairs (2i, 2i+1)) computes what HF's rotate-half RoPE
// (pairs (i, i + d/2)) computes on the original rows. Within head h (head_dim d):
//   gguf_row[h*d + 2*i + j] = hf_row[h*d + j*d/2 + i]      (i < d/2, j in {0, 1})
// Our RoPE op is rotate-half, so the rows are moved back at load. The move is a pure row
// permutation, so it works on raw row bytes of any dtype (quantized blocks never span rows).
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

#include "engine/model/gguf.hpp"
#include "engine/model/model_source_impl.hpp"

namespace kwaai::engine::detail {
namespace {

// HF name suffix (after "model.layers.N.") <- GGUF suffix (after "blk.N.").
const std::map<std::string, std::string>& block_names() {
  static const std::map<std::string, std::string> m = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"ffn_gate_inp.weight", "block_sparse_moe.gate.weight"},  // Mixtral's router
  };
  return m;
}

// GGUF name -> HF name; empty when the tensor has no HF counterpart we use.
std::string hf_name(const std::string& g) {
  if (g == "token_embd.weight") return kEmbedName;
  if (g == "output_norm.weight") return kFinalNormName;
  if (g == "output.weight") return kLmHeadName;
  if (!g.starts_with("blk.")) return {};
  auto dot = g.find('.', 4);
  if (dot == std::string::npos || dot == 4) return {};
  std::string idx = g.substr(4, dot - 4);
  if (idx.size() > 6 || idx.find_first_not_of("0123456789") != std::string::npos) return {};
  auto it = block_names().find(g.substr(dot + 1));
  if (it == block_names().end()) return {};
  return "model.layers." + idx + "." + it->second;
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf) {
  if (hf == kEmbedName) return "token_embd.weight";
  if (hf == kFinalNormName) return "output_norm.weight";
  if (hf == kLmHeadName) return "output.weight";
  const std::string pre = "model.layers.";
  if (!hf.starts_with(pre)) return {};
  const auto dot = hf.find('.', pre.size());
  if (dot == std::string::npos) return {};
  const std::string rest = hf.substr(dot + 1);
  for (const auto& [g, h] : block_names())
    if (h == rest) return "blk." + hf.substr(pre.size(), dot - pre.size()) + "." + g;
  return {};
}

void permute_qk_rows(std::vector<std::byte>& rows, std::int64_t heads, std::int64_t d,
                     bool to_gguf) {
  const auto n = static_cast<std::size_t>(heads * d);
  if (n == 0 || rows.size() % n != 0)
    throw std::invalid_argument("permute_qk_rows: " + std::to_string(rows.size()) +
                                " bytes are not " + std::to_string(n) + " rows");
  const std::size_t row_bytes = rows.size() / n;
  std::vector<std::byte> out(rows.size());
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t i = 0; i < d / 2; ++i)
      for (std::int64_t j = 0; j < 2; ++j) {
        const std::int64_t g = h * d + 2 * i + j, f = h * d + j * (d / 2) + i;
        const std::int64_t from = to_gguf ? f : g, to = to_gguf ? g : f;
        std::memcpy(out.data() + static_cast<std::size_t>(to) * row_bytes,
                    rows.data() + static_cast<std::size_t>(from) * row_bytes, row_bytes);
      }
  rows.swap(out);
}

namespace {

class GgufSource final : public ModelSource {
 public:
  explicit GgufSource(const std::string& path) : path_(path), file_(path) {
    const GgufHeader& h = file_.header();
    for (const auto& t : h.tensors) {
      std::string n = hf_name(t.name);
      if (!n.empty()) names_[n] = {t.name, -1};
      add_expert_slices(t);
    }
    read_config();
  }

  const ModelConfig& config() const override { return config_; }
  std::string format() const override { return "gguf"; }
  const std::string& path() const override { return path_; }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& [n, r] : names_) out.push_back(n);
    return out;
  }
  bool has(const std::string& name) const override { return names_.count(name) != 0; }

  TensorInfo info(const std::string& name) const override {
    const Ref& r = ref(name);
    const GgufTensorInfo* t = file_.find(r.gguf);
    if (r.expert < 0) return {t->dtype, t->shape};
    return {t->dtype, Shape(t->shape.begin() + 1, t->shape.end())};
  }

  HostTensor load(const std::string& name) const override {
    const Ref& r = ref(name);
    TensorView v = file_.view(r.gguf);
    if (r.expert >= 0) {
      // One expert of a stacked [experts, rows, cols] tensor: a contiguous slice (quantized
      // blocks never straddle rows, so never experts).
      const std::size_t per = v.data.size() / static_cast<std::size_t>(v.shape.front());
      v.data = v.data.subspan(static_cast<std::size_t>(r.expert) * per, per);
      v.shape.erase(v.shape.begin());
    }
    {
      std::lock_guard lock(mu_);
      bytes_read_ += v.data.size();
    }
    HostTensor t;
    t.name = name;
    t.dtype = v.dtype;
    t.shape = v.shape;
    std::int64_t heads = 0;
    if (name.ends_with("self_attn.q_proj.weight")) heads = config_.heads;
    if (name.ends_with("self_attn.k_proj.weight")) heads = config_.kv_heads;
    if (heads == 0) {
      t.data.assign(v.data.begin(), v.data.end());
      return t;
    }
    const std::int64_t rows = v.shape.front();
    if (v.shape.size() != 2 || rows != heads * config_.head_dim) {
      throw std::runtime_error("gguf '" + path_ + "': tensor '" + name + "' has shape " +
                               shape_str(v.shape) + ", expected " +
                               std::to_string(heads * config_.head_dim) + " rows to un-permute");
    }
    t.data.assign(v.data.begin(), v.data.end());
    permute_qk_rows(t.data, heads, config_.head_dim, false);
    return t;
  }

  std::uint64_t bytes_read() const override {
    std::lock_guard lock(mu_);
    return bytes_read_;
  }

 private:
  // An HF name's GGUF tensor, and which expert of a stacked ffn_*_exps tensor (-1: all of it).
  struct Ref {
    std::string gguf;
    std::int64_t expert = -1;
  };
  const Ref& ref(const std::string& name) const {
    auto it = names_.find(name);
    if (it == names_.end())
      throw std::out_of_range("gguf '" + path_ + "': no tensor '" + name + "'");
    return it->second;
  }

  // Mixtral files (llama.cpp since 2024) stack a block's experts: blk.N.ffn_{gate,up,down}_exps
  // [experts, rows, cols] hold HF's experts.{e}.w1 / w3 / w2.
  void add_expert_slices(const GgufTensorInfo& t) {
    if (!t.name.starts_with("blk.") || t.shape.size() != 3) return;
    const auto dot = t.name.find('.', 4);
    if (dot == std::string::npos) return;
    const std::string idx = t.name.substr(4, dot - 4), rest = t.name.substr(dot + 1);
    if (idx.empty() || idx.size() > 6 || idx.find_first_not_of("0123456789") != std::string::npos)
      return;
    const char* w = rest == "ffn_gate_exps.weight"   ? "w1"
                    : rest == "ffn_up_exps.weight"   ? "w3"
                    : rest == "ffn_down_exps.weight" ? "w2"
                                                     : nullptr;
    if (w == nullptr || t.shape.front() <= 0 || t.shape.front() > 256) return;
    for (std::int64_t e = 0; e < t.shape.front(); ++e)
      names_["model.layers." + idx + ".block_sparse_moe.experts." + std::to_string(e) + "." + w +
             ".weight"] = {t.name, e};
  }

  const GgufValue& need(const std::string& key) const {
    const GgufValue* v = file_.header().find(key);
    if (v == nullptr)
      throw std::runtime_error("gguf '" + path_ + "': missing metadata '" + key + "'");
    return *v;
  }
  std::int64_t get_int(const std::string& key) const {
    try {
      return need(key).as_int();
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("gguf '" + path_ + "': '" + key + "': " + e.what());
    }
  }
  double get_float(const std::string& key, double dflt) const {
    const GgufValue* v = file_.header().find(key);
    if (v == nullptr) return dflt;
    try {
      return v->as_float();
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("gguf '" + path_ + "': '" + key + "': " + e.what());
    }
  }
  bool has_key(const std::string& key) const { return file_.header().find(key) != nullptr; }

  void read_config() {
    const GgufHeader& h = file_.header();
    std::string arch = "llama";
    if (const GgufValue* a = h.find("general.architecture")) arch = a->as_string();
    if (arch != "llama") {
      throw std::runtime_error("gguf '" + path_ + "': architecture '" + arch +
                               "' is not supported (llama)");
    }
    ModelConfig& c = config_;
    c.architecture = arch;
    if (has_key("llama.expert_count") && get_int("llama.expert_count") > 0) {
      // Mixtral: the stacked experts are sliced per expert (add_expert_slices).
      c.architecture = "mixtral";
      c.experts = get_int("llama.expert_count");
      c.experts_per_token = get_int("llama.expert_used_count");
    }
    c.layers = get_int("llama.block_count");
    c.hidden = get_int("llama.embedding_length");
    c.intermediate = get_int("llama.feed_forward_length");
    c.heads = get_int("llama.attention.head_count");
    c.kv_heads = has_key("llama.attention.head_count_kv") ? get_int("llama.attention.head_count_kv")
                                                          : c.heads;
    c.head_dim = c.heads > 0 ? c.hidden / c.heads : 0;
    if (has_key("llama.attention.key_length")) c.head_dim = get_int("llama.attention.key_length");
    if (has_key("llama.rope.dimension_count") &&
        get_int("llama.rope.dimension_count") != c.head_dim) {
      // Partial rotary embeddings are not something the RoPE op does.
      throw std::runtime_error("gguf '" + path_ + "': llama.rope.dimension_count " +
                               std::to_string(get_int("llama.rope.dimension_count")) +
                               " differs from head_dim " + std::to_string(c.head_dim));
    }
    if (has_key("llama.context_length")) c.max_position = get_int("llama.context_length");
    c.rms_eps = static_cast<float>(get_float("llama.attention.layer_norm_rms_epsilon", 1e-5));
    c.rope.theta = static_cast<float>(get_float("llama.rope.freq_base", 10000.0));
    if (has_key("llama.vocab_size")) {
      c.vocab = get_int("llama.vocab_size");
    } else if (const GgufValue* t = h.find("tokenizer.ggml.tokens");
               t && t->type == GgufType::ARRAY) {
      c.vocab = static_cast<std::int64_t>(t->items.size());
    } else if (const GgufTensorInfo* e = file_.find("token_embd.weight")) {
      c.vocab = e->shape.front();
    }
    if (file_.find("rope_freqs.weight") != nullptr) {
      // Llama 3.1+ GGUFs carry the llama3 frequency scaling as a per-frequency factor tensor
      // instead of the four parameters RopeConfig takes; rather than guess, refuse.
      throw std::runtime_error("gguf '" + path_ +
                               "': rope_freqs.weight (Llama 3.1 frequency scaling) is not "
                               "supported; load the HF checkpoint instead");
    }
    c.bos_id = has_key("tokenizer.ggml.bos_token_id") ? get_int("tokenizer.ggml.bos_token_id") : -1;
    if (has_key("tokenizer.ggml.eos_token_id"))
      c.eos_ids = {get_int("tokenizer.ggml.eos_token_id")};
    c.tied_embeddings = file_.find("output.weight") == nullptr;
    if (const GgufValue* ft = h.find("general.file_type"); ft && ft->is_integer()) {
      c.torch_dtype = "gguf file_type " + std::to_string(ft->as_int());
    }
    try {
      c.validate();
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error("gguf '" + path_ + "': " + e.what());
    }
  }

  std::string path_;
  GgufFile file_;
  ModelConfig config_;
  std::map<std::string, Ref> names_;  // HF -> GGUF
  mutable std::mutex mu_;
  mutable std::uint64_t bytes_read_ = 0;
};

}  // namespace

std::unique_ptr<ModelSource> open_gguf_source(const std::string& file) {
  return std::make_unique<GgufSource>(file);
}

}  // namespace kwaai::engine::detail
