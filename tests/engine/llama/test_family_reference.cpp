// Model families beside Llama against float64 references computed by the real Hugging Face
// transformers 4.43.2 modeling code (shared/models/tiny-*/, each README says what every tensor
// is): per-block hidden states of a 17-token prefill, one KV-cache decode step, the final
// logits and 32 greedy ids, on every backend.
//   tiny-mistral: Llama blocks with sliding_window 8 < the 17-token prompt, so the window decides
//   positions 8.. (HF's eager Mistral: each query sees exactly the last 8 keys, itself included).
//   tiny-mixtral: sparse MoE MLP (4 experts, top 2, renormalised router softmax); the prompt
//   and decode tokens use every expert, and the README's minimum 2nd/3rd router-logit gap
//   (0.049) is far above float32 error, so the same experts are chosen as in float64.
//   tiny-falcon-7b: Falcon's old layout: multi-query (one KV head), one input_layernorm shared
//   by the parallel attention and GELU MLP, fused QKV [q heads | k | v], tied head.
//   tiny-falcon-new: the 40B/180B layout: grouped KV (6/2), ln_attn + ln_mlp, the fused rows
//   grouped per KV head.
//   tiny-bloom: ALiBi with 6 heads (not a power of two: HF's extra-slope rule), LayerNorms and
//   linear layers with biases, fused QKV per head, tanh GELU, word_embeddings_layernorm in the
//   model's input end (hidden_in is after it).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/llama/generate.hpp"
#include "engine/llama/model.hpp"
#include "engine/llama/span_executor.hpp"
#include "engine/model/model_source.hpp"
#include "tests/engine/llama/llama_test_util.hpp"

namespace kwaai::engine::llama {
namespace {

using test::rel_l2;

// The references are float64 (F64), which the engine's safetensors reader does not take as
// weights; this reads them for the test only, converted to float.
class F64Reference {
 public:
  explicit F64Reference(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::uint64_t n = 0;
    f.read(reinterpret_cast<char*>(&n), 8);
    std::string header(n, '\0');
    f.read(header.data(), static_cast<std::streamsize>(n));
    header_ = nlohmann::json::parse(header);
    data_.assign(std::istreambuf_iterator<char>(f), {});
  }
  std::vector<float> f32(const std::string& name) const {
    const auto& e = header_.at(name);
    EXPECT_EQ(e.at("dtype"), "F64") << name;
    const auto b = e.at("data_offsets")[0].get<std::size_t>(),
               end = e.at("data_offsets")[1].get<std::size_t>();
    std::vector<float> out((end - b) / 8);
    for (std::size_t i = 0; i < out.size(); ++i) {
      double d;
      std::memcpy(&d, data_.data() + b + 8 * i, 8);
      out[i] = static_cast<float>(d);
    }
    return out;
  }
  std::vector<std::int32_t> i32(const std::string& name) const {
    const auto& e = header_.at(name);
    EXPECT_EQ(e.at("dtype"), "I32") << name;
    const auto b = e.at("data_offsets")[0].get<std::size_t>(),
               end = e.at("data_offsets")[1].get<std::size_t>();
    std::vector<std::int32_t> out((end - b) / 4);
    std::memcpy(out.data(), data_.data() + b, end - b);
    return out;
  }

 private:
  nlohmann::json header_;
  std::string data_;
};

std::string model_dir(const std::string& name) {
  return std::string(KWAAI_SHARED_DIR) + "/models/" + name;
}

struct FamilyCase {
  std::string model, device;
};
void PrintTo(const FamilyCase& c, std::ostream* os) {
  *os << c.model << " on " << c.device;
}

class FamilyReference : public ::testing::TestWithParam<FamilyCase> {
 protected:
  void SetUp() override {
    src_ = open_model(model_dir(GetParam().model));
    ref_ = std::make_unique<F64Reference>(model_dir(GetParam().model) + "/reference.safetensors");
  }
  std::unique_ptr<ModelSource> src_;
  std::unique_ptr<F64Reference> ref_;
};

TEST_P(FamilyReference, PrefillAndDecodeHiddenStatesMatchAfterEveryBlock) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam().device);
  const ModelConfig& cfg = src_->config();
  const std::vector<std::int32_t> prompt = ref_->i32("prompt_ids");
  const auto t = static_cast<std::int64_t>(prompt.size());
  std::vector<std::unique_ptr<SpanExecutor>> spans;
  std::vector<KvCache> caches;
  for (std::int64_t i = 0; i < cfg.layers; ++i) {
    spans.push_back(std::make_unique<SpanExecutor>(*be, *src_, i, i + 1));
    caches.push_back(spans.back()->make_cache(1, t + 1));
  }
  std::vector<float> h = ref_->f32("hidden_in");
  for (std::int64_t i = 0; i < cfg.layers; ++i) {
    h = spans[i]->forward(h, 1, t, caches[i], 0);
    const double err = rel_l2(h, ref_->f32("hidden_after_block_" + std::to_string(i)));
    EXPECT_LT(err, test::tolerance(*be)) << "prefill, block " << i;
  }
  std::vector<float> d = ref_->f32("decode_hidden_in");
  for (std::int64_t i = 0; i < cfg.layers; ++i) {
    d = spans[i]->forward(d, 1, 1, caches[i], t);
    const double err = rel_l2(d, ref_->f32("decode_hidden_after_block_" + std::to_string(i)));
    EXPECT_LT(err, test::tolerance(*be)) << "decode step, block " << i;
  }
}

TEST_P(FamilyReference, SubSpansChainToTheWholeSpan) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam().device);
  const std::int64_t layers = src_->config().layers;
  const std::vector<std::int32_t> prompt = ref_->i32("prompt_ids");
  const auto t = static_cast<std::int64_t>(prompt.size());
  SpanExecutor head(*be, *src_, 0, 2), tail(*be, *src_, 2, layers);
  KvCache ch = head.make_cache(1, t), ct = tail.make_cache(1, t);
  const auto out = tail.forward(head.forward(ref_->f32("hidden_in"), 1, t, ch, 0), 1, t, ct, 0);
  EXPECT_LT(rel_l2(out, ref_->f32("hidden_after_block_" + std::to_string(layers - 1))),
            test::tolerance(*be));
}

TEST_P(FamilyReference, LogitsAndGreedyIdsMatch) {
  KWAAI_BACKEND_OR_SKIP(be, GetParam().device);
  LlamaModel model(*be, *src_);
  const std::vector<std::int32_t> prompt = ref_->i32("prompt_ids");
  KvCache cache = model.make_cache(1, 32);
  const auto logits = model.forward(prompt, 1, static_cast<std::int64_t>(prompt.size()), cache, 0);
  EXPECT_LT(rel_l2(logits, ref_->f32("logits_last")), test::tolerance(*be));
  GenerateOptions opt;
  opt.max_new_tokens = 32;  // no stop tokens: the reference does not stop at EOS either
  const auto bos = static_cast<std::int32_t>(src_->config().bos_id);
  EXPECT_EQ(generate(model, std::span(&bos, 1), opt).ids, ref_->i32("greedy_from_bos"));
}

TEST(FamilyConfig, MistralSlidingWindowIsReadFromTheConfig) {
  auto src = open_model(model_dir("tiny-mistral"));
  EXPECT_EQ(src->config().architecture, "mistral");
  EXPECT_EQ(src->config().sliding_window, 8);
  EXPECT_EQ(open_model(test::stories_dir())->config().sliding_window, 0);
}

TEST(FamilyConfig, MixtralExpertsAreReadFromTheConfig) {
  auto src = open_model(model_dir("tiny-mixtral"));
  EXPECT_EQ(src->config().architecture, "mixtral");
  EXPECT_EQ(src->config().experts, 4);
  EXPECT_EQ(src->config().experts_per_token, 2);
  EXPECT_EQ(src->config().sliding_window, 0);  // null in the config
  EXPECT_EQ(open_model(test::stories_dir())->config().experts, 0);
}

TEST(FamilyConfig, MixtralBlockWithAMissingExpertFailsNamingIt) {
  auto be = make_backend("cpu");
  auto src = open_model(model_dir("tiny-mixtral"));
  try {
    (void)load_block_tensor(*src, 0, BlockTensor::Gate, kNoQuant);
    FAIL() << "a MoE block has no dense gate";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("per expert"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)load_expert_tensor(*src, 0, 4, BlockTensor::Gate, kNoQuant),
               std::out_of_range);
  EXPECT_EQ(load_expert_tensor(*src, 2, 3, BlockTensor::Down, kNoQuant).shape, (Shape{64, 96}));
}

TEST(FamilyConfig, FalconLayoutsAreReadFromTheConfig) {
  const ModelConfig old = open_model(model_dir("tiny-falcon-7b"))->config();
  EXPECT_TRUE(old.is_falcon());
  EXPECT_FALSE(old.falcon_new_arch);
  EXPECT_EQ(old.kv_heads, 1);  // multi_query: num_kv_heads in the file (4) is ignored, as HF does
  EXPECT_EQ(old.falcon_norms, 1);
  EXPECT_TRUE(old.parallel_attn);
  EXPECT_EQ(old.intermediate, 256);  // ffn_hidden_size
  EXPECT_TRUE(old.tied_embeddings);
  EXPECT_EQ(old.bos_id, 11);
  const ModelConfig nu = open_model(model_dir("tiny-falcon-new"))->config();
  EXPECT_TRUE(nu.falcon_new_arch);
  EXPECT_EQ(nu.kv_heads, 2);
  EXPECT_EQ(nu.falcon_norms, 2);  // num_ln_in_parallel_attn null -> 2, as FalconModel sets it
  EXPECT_FALSE(block_has_tensor(nu, BlockTensor::Gate));
  EXPECT_EQ(block_tensor_name(nu, 1, BlockTensor::PostNormBias), "transformer.h.1.ln_mlp.bias");
  EXPECT_EQ(block_tensor_name(old, 0, BlockTensor::K),
            "transformer.h.0.self_attention.query_key_value.weight");
  EXPECT_THROW((void)block_tensor_name(old, 0, BlockTensor::PostNorm), std::invalid_argument);
}

TEST(FamilyConfig, FalconFeaturesTheBlockDoesNotComputeAreRefusedByName) {
  const std::string base = R"("model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4,
      "num_hidden_layers": 2, "vocab_size": 100)";
  auto refused = [&](const std::string& extra, const std::string& what) {
    try {
      (void)parse_hf_config("{" + base + ", " + extra + "}");
      ADD_FAILURE() << extra;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  refused(R"("alibi": true)", "alibi");
  refused(R"("bias": true)", "bias");
  refused(R"("activation": "relu")", "relu");
  refused(R"("multi_query": false)", "multi_query");
  refused(R"("rope_scaling": {"type": "linear", "factor": 2.0})", "rope_scaling");
  EXPECT_EQ(parse_hf_config("{" + base + "}").kv_heads, 1);
}

TEST(FamilyConfig, FalconFusedQkvIsSplitPerKvGroup) {
  // Row h*d of the fused tensor, split by HF's _split_heads rule for the new layout
  // ([kv_heads, heads/kv_heads + 2, head_dim]): query head h of group g = h / 3 is fused head
  // g * 5 + h % 3, key g is g * 5 + 3, value g is g * 5 + 4.
  auto src = open_model(model_dir("tiny-falcon-new"));
  const ModelConfig& c = src->config();
  const std::int64_t d = c.head_dim, hid = c.hidden;
  const HostTensor fused = src->load(block_tensor_name(c, 0, BlockTensor::Q), DType::F32);
  const auto qkv = load_block_qkv(*src, 0, kNoQuant);
  auto row = [&](const HostTensor& t, std::int64_t r) {
    const auto* f = reinterpret_cast<const float*>(t.data.data());
    return std::vector<float>(f + r * hid, f + (r + 1) * hid);
  };
  ASSERT_EQ(qkv[0].shape, (Shape{6 * d, hid}));
  ASSERT_EQ(qkv[1].shape, (Shape{2 * d, hid}));
  for (std::int64_t h = 0; h < 6; ++h)
    EXPECT_EQ(row(qkv[0], h * d + 1), row(fused, ((h / 3) * 5 + h % 3) * d + 1)) << "q " << h;
  for (std::int64_t g = 0; g < 2; ++g) {
    EXPECT_EQ(row(qkv[1], g * d), row(fused, (g * 5 + 3) * d)) << "k " << g;
    EXPECT_EQ(row(qkv[2], g * d + d - 1), row(fused, (g * 5 + 4) * d + d - 1)) << "v " << g;
  }
}

TEST(FamilyConfig, BloomIsReadFromTheConfig) {
  const ModelConfig c = open_model(model_dir("tiny-bloom"))->config();
  EXPECT_TRUE(c.is_bloom());
  EXPECT_EQ(c.heads, 6);   // n_head
  EXPECT_EQ(c.layers, 3);  // n_layer
  EXPECT_EQ(c.kv_heads, 6);
  EXPECT_EQ(c.intermediate, 4 * 96);
  EXPECT_EQ(c.alibi_max_bias, 8.0f);
  EXPECT_TRUE(c.tied_embeddings);
  // HF's slopes for 6 heads (the README's list): 4 from base 1/4, then 2 odd powers of 1/2.
  const AlibiSlopes slopes(6, 8.0f);
  const float want[] = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
  for (int h = 0; h < 6; ++h) EXPECT_FLOAT_EQ(slopes(h), want[h]) << h;
  EXPECT_EQ(block_tensor_name(c, 2, BlockTensor::VBias),
            "transformer.h.2.self_attention.query_key_value.bias");
  try {
    (void)parse_hf_config(
        R"({"model_type": "bloom", "apply_residual_connection_post_layernorm": true})");
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("apply_residual_connection_post_layernorm"),
              std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, FamilyReference,
    ::testing::Values(FamilyCase{"tiny-mistral", "cpu"}, FamilyCase{"tiny-mistral", "vulkan"},
                      FamilyCase{"tiny-mixtral", "cpu"}, FamilyCase{"tiny-mixtral", "vulkan"},
                      FamilyCase{"tiny-falcon-7b", "cpu"}, FamilyCase{"tiny-falcon-7b", "vulkan"},
                      FamilyCase{"tiny-falcon-new", "cpu"}, FamilyCase{"tiny-falcon-new", "vulkan"},
                      FamilyCase{"tiny-bloom", "cpu"}, FamilyCase{"tiny-bloom", "vulkan"}),
    [](const auto& info) {
      std::string n = info.param.model + "_" + info.param.device;
      for (auto& c : n)
        if (c == '-') c = '_';
      return n;
    });

}  // namespace
}  // namespace kwaai::engine::llama
