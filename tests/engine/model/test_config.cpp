#include <gtest/gtest.h>

#include "engine/model/config.hpp"
#include "tests/engine/model/test_util.hpp"

namespace kwaai::engine {
namespace {

void expect_refused(const std::string& json, const char* fragment) {
  try {
    parse_hf_config(json, "cfg.json");
    ADD_FAILURE() << "accepted: " << json;
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << "missing '" << fragment << "' in: " << msg;
  }
}

TEST(HfConfig, Stories260K) {
  ModelConfig c = load_hf_config(test::shared_model_dir() + "/config.json");
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.hidden, 64);
  EXPECT_EQ(c.intermediate, 172);
  EXPECT_EQ(c.layers, 5);
  EXPECT_EQ(c.heads, 8);
  EXPECT_EQ(c.kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab, 512);
  EXPECT_EQ(c.max_position, 512);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope.theta, 10000.0f);
  EXPECT_LE(c.rope.llama3_factor, 1.0f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_ids, std::vector<std::int64_t>{2});
  EXPECT_EQ(c.torch_dtype, "float32");
}

// Llama 2 7B's config (values as published): no kv heads field means MHA.
TEST(HfConfig, Llama2DefaultsKvHeadsToHeads) {
  ModelConfig c = parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",
    "hidden_size":4096,"intermediate_size":11008,"num_hidden_layers":32,"num_attention_heads":32,
    "vocab_size":32000,"max_position_embeddings":4096,"rms_norm_eps":1e-05,"hidden_act":"silu",
    "bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":false,"torch_dtype":"float16",
    "rope_scaling":null})");
  EXPECT_EQ(c.kv_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_FLOAT_EQ(c.rope.theta, 10000.0f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.torch_dtype, "float16");
}

TEST(HfConfig, Llama31RopeScalingAndEosList) {
  ModelConfig c = parse_hf_config(R"({"model_type":"llama","hidden_size":4096,
    "intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,
    "vocab_size":128256,"max_position_embeddings":131072,"rms_norm_eps":1e-05,"rope_theta":500000.0,
    "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
      "original_max_position_embeddings":8192,"rope_type":"llama3"},
    "bos_token_id":128000,"eos_token_id":[128001,128008,128009],"torch_dtype":"bfloat16"})");
  EXPECT_EQ(c.kv_heads, 8);
  EXPECT_FLOAT_EQ(c.rope.theta, 500000.0f);
  EXPECT_FLOAT_EQ(c.rope.llama3_factor, 8.0f);
  EXPECT_FLOAT_EQ(c.rope.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope.original_max_position, 8192);
  EXPECT_EQ(c.eos_ids, (std::vector<std::int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.bos_id, 128000);
}

TEST(HfConfig, Llama32TiedWithExplicitHeadDim) {
  ModelConfig c = parse_hf_config(R"({"model_type":"llama","hidden_size":2048,"head_dim":64,
    "intermediate_size":8192,"num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,
    "vocab_size":128256,"rms_norm_eps":1e-05,"rope_theta":500000.0,"tie_word_embeddings":true,
    "rope_scaling":{"factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
      "original_max_position_embeddings":8192,"rope_type":"llama3"}})");
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_FLOAT_EQ(c.rope.llama3_factor, 32.0f);
}

TEST(HfConfig, MistralAndTinyLlama) {
  ModelConfig m = parse_hf_config(R"({"model_type":"mistral","hidden_size":4096,
    "intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,
    "vocab_size":32000,"max_position_embeddings":32768,"rms_norm_eps":1e-05,"rope_theta":10000.0,
    "sliding_window":null,"hidden_act":"silu"})");
  EXPECT_EQ(m.architecture, "mistral");
  EXPECT_EQ(m.kv_heads, 8);
  ModelConfig t = parse_hf_config(R"({"model_type":"llama","hidden_size":2048,
    "intermediate_size":5632,"num_hidden_layers":22,"num_attention_heads":32,"num_key_value_heads":4,
    "vocab_size":32000,"max_position_embeddings":2048,"rms_norm_eps":1e-05})");
  EXPECT_EQ(t.head_dim, 64);
  EXPECT_EQ(t.kv_heads, 4);
}

TEST(HfConfig, RefusesInconsistentOrUnsupportedConfigs) {
  const std::string base =
      R"("hidden_size":64,"intermediate_size":172,"num_hidden_layers":2,"vocab_size":512)";
  expect_refused("{" + base + R"(,"num_attention_heads":8,"num_key_value_heads":3})",
                 "divisible by kv heads");
  expect_refused("{" + base + R"(,"num_attention_heads":6})", "not divisible by 6 heads");
  expect_refused("{" + base + R"(,"num_attention_heads":8,"num_key_value_heads":16})", "kv heads");
  expect_refused("{" + base + R"(,"num_attention_heads":0})", "num_attention_heads");
  expect_refused(R"({"hidden_size":64,"num_attention_heads":8})", "missing 'intermediate_size'");
  expect_refused("{" + base + R"(,"num_attention_heads":8,"model_type":"gpt2"})",
                 "model_type 'gpt2'");
  expect_refused("{" + base + R"(,"num_attention_heads":8,"hidden_act":"gelu"})", "hidden_act");
  expect_refused(
      "{" + base + R"(,"num_attention_heads":8,"rope_scaling":{"type":"linear","factor":2.0}})",
      "rope_scaling type 'linear'");
  expect_refused("{" + base + R"(,"num_attention_heads":8,"head_dim":7})", "head_dim");
  expect_refused("{" + base + R"(,"num_attention_heads":8,"eos_token_id":9999})", "eos id 9999");
  expect_refused("{" + base + R"(,"num_attention_heads":8,"tie_word_embeddings":"yes"})",
                 "unexpected value type");
  expect_refused("{" + base + R"(,"num_attention_heads":"8"})", "not an integer");
  expect_refused("[1]", "not an object");
  expect_refused("{", "not valid JSON");
}

}  // namespace
}  // namespace kwaai::engine
