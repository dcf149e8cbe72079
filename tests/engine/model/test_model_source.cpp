#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <tuple>

#include "engine/core/dtype.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/host_tensor.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/safetensors.hpp"
#include "tests/engine/model/gguf_writer.hpp"
#include "tests/engine/model/test_util.hpp"

namespace kwaai::engine {
namespace {

namespace fs = std::filesystem;
using test::GgufWriter;
using test::TempDir;

std::string stories() {
  return test::shared_model_dir();
}

std::string bytes_of(const HostTensor& t) {
  return std::string(reinterpret_cast<const char*>(t.data.data()), t.data.size());
}

std::vector<HostTensor> all_block_tensors(const BlockWeights& b) {
  return {b.input_norm, b.q, b.k, b.v, b.o, b.post_norm, b.gate, b.up, b.down};
}

// HF name -> llama.cpp GGUF name (written here independently of the loader's table).
std::string gguf_name_of(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::map<std::string, std::string> m = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  auto rest = hf.substr(std::string("model.layers.").size());
  auto dot = rest.find('.');
  return "blk." + rest.substr(0, dot) + "." + m.at(rest.substr(dot + 1));
}

// llama.cpp's converter permutation for interleaved RoPE, applied to rows of `row_bytes` bytes.
std::string permute_rows(const std::string& hf, std::int64_t heads, std::int64_t head_dim,
                         std::size_t row_bytes) {
  std::string out(hf.size(), '\0');
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t j = 0; j < 2; ++j) {
      for (std::int64_t i = 0; i < head_dim / 2; ++i) {
        const std::size_t src = static_cast<std::size_t>(h * head_dim + j * (head_dim / 2) + i);
        const std::size_t dst = static_cast<std::size_t>(h * head_dim + 2 * i + j);
        out.replace(dst * row_bytes, row_bytes, hf, src * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

// Writes stories260K as a GGUF file. Matrices whose rows split into 32-value blocks are stored
// as `matrix_type` (0 = F32, 1 = F16, 8 = Q8_0, 2 = Q4_0); others stay F32.
void write_stories_gguf(const std::string& path, std::uint32_t matrix_type) {
  SafetensorsFile st(stories() + "/model.safetensors");
  GgufWriter w;
  w.kv_str("general.architecture", "llama");
  w.kv_str("general.name", "stories260K");
  w.kv_u32("llama.block_count", 5);
  w.kv_u32("llama.embedding_length", 64);
  w.kv_u32("llama.feed_forward_length", 172);
  w.kv_u32("llama.attention.head_count", 8);
  w.kv_u32("llama.attention.head_count_kv", 4);
  w.kv_u32("llama.context_length", 512);
  w.kv_u32("llama.rope.dimension_count", 8);
  w.kv_f32("llama.rope.freq_base", 10000.0f);
  w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.kv_str("tokenizer.ggml.model", "llama");
  std::vector<std::string> toks(512);
  for (int i = 0; i < 512; ++i) toks[i] = "t" + std::to_string(i);
  w.kv_str_array("tokenizer.ggml.tokens", toks);
  w.kv_u32("tokenizer.ggml.bos_token_id", 1);
  w.kv_u32("tokenizer.ggml.eos_token_id", 2);
  for (const auto& name : st.names()) {
    TensorView v = st.view(name);
    const std::int64_t cols = v.shape.back();
    const std::int64_t rows = v.numel() / cols;
    DType dt = DType::F32;
    std::uint32_t type = 0;
    if (v.shape.size() == 2 && (matrix_type == 1 || cols % 32 == 0)) {
      type = matrix_type;
      dt = type == 1 ? DType::F16 : type == 8 ? DType::Q8_0 : type == 2 ? DType::Q4_0 : DType::F32;
    }
    std::string data(dtype_bytes(dt, v.numel()), '\0');
    from_f32(dt, reinterpret_cast<const float*>(v.data.data()), data.data(), v.numel());
    const std::size_t row_bytes = data.size() / static_cast<std::size_t>(rows);
    if (name.ends_with("q_proj.weight")) data = permute_rows(data, 8, 8, row_bytes);
    if (name.ends_with("k_proj.weight")) data = permute_rows(data, 4, 8, row_bytes);
    std::vector<std::uint64_t> ne(v.shape.rbegin(), v.shape.rend());
    w.tensor(gguf_name_of(name), type, ne, data);
  }
  test::write_file(path, w.finish());
}

TEST(ModelSource, OpensStories260KFolder) {
  auto src = open_model(stories());
  EXPECT_EQ(src->format(), "safetensors");
  EXPECT_EQ(src->config().layers, 5);
  EXPECT_TRUE(src->config().tied_embeddings);
  EXPECT_EQ(src->names().size(), 47u);
  EXPECT_EQ(src->bytes_read(), 0u);  // opening reads headers only
  auto info = src->info("model.layers.3.mlp.down_proj.weight");
  EXPECT_EQ(info.dtype, DType::F32);
  EXPECT_EQ(info.shape, (Shape{64, 172}));
  // Tied: the output head is the embedding table.
  EXPECT_EQ(bytes_of(load_lm_head(*src, kNoQuant)), bytes_of(load_embeddings(*src, kNoQuant)));
  EXPECT_THROW(src->info("lm_head.weight"), std::out_of_range);
  // Opening the config.json path opens the folder.
  EXPECT_EQ(open_model(stories() + "/config.json")->config().hidden, 64);
}

TEST(ModelSource, BlockRangeReadsOnlyThoseBlocksAndMatchesIndependentReader) {
  auto src = open_model(stories());
  auto blocks = load_blocks(*src, 2, 4, kNoQuant);
  ASSERT_EQ(blocks.size(), 2u);
  std::uint64_t expect = 0;
  for (const auto& b : blocks) {
    for (const auto& t : all_block_tensors(b)) {
      expect += t.data.size();
      EXPECT_EQ(t.dtype, DType::F32) << t.name;
      auto ref = test::reference_read_f32(stories() + "/model.safetensors", t.name);
      EXPECT_EQ(test::as_f32(t.data.data(), t.data.size()), ref) << t.name;
    }
  }
  EXPECT_EQ(blocks[0].index, 2);
  EXPECT_EQ(blocks[1].q.name, "model.layers.3.self_attn.q_proj.weight");
  EXPECT_EQ(src->bytes_read(), expect);
  EXPECT_EQ(expect, 2u * (2 * 64 + 64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 3) * 4u);
  EXPECT_THROW(load_blocks(*src, 4, 6, kNoQuant), std::out_of_range);
  EXPECT_THROW(load_blocks(*src, 3, 3, kNoQuant), std::out_of_range);
  EXPECT_THROW(load_block(*src, -1, kNoQuant), std::out_of_range);
}

// Three shards: [embed, blocks 0-1], [blocks 2-3], [block 4, norm]. With shards 1 and 3 deleted,
// blocks [2, 4) still load, and only shard 2 is opened.
TEST(ModelSource, ShardedBlockRangeLoadsWithOtherShardsAbsent) {
  TempDir dir;
  SafetensorsFile st(stories() + "/model.safetensors");
  std::vector<std::vector<test::StTensor>> shards(3);
  std::string weight_map;
  auto shard_of = [](const std::string& n) {
    if (n.starts_with("model.layers.")) {
      int layer = std::stoi(n.substr(13));
      return layer < 2 ? 0 : layer < 4 ? 1 : 2;
    }
    return n == "model.norm.weight" ? 2 : 0;
  };
  for (const auto& n : st.names()) {
    TensorView v = st.view(n);
    int s = shard_of(n);
    shards[s].push_back({n, "F32", v.shape,
                         std::string(reinterpret_cast<const char*>(v.data.data()), v.data.size())});
    weight_map += (weight_map.empty() ? "" : ",") +
                  ("\"" + n + "\":\"shard" + std::to_string(s) + ".safetensors\"");
  }
  for (int s = 0; s < 3; ++s)
    test::write_file(dir.file("shard" + std::to_string(s) + ".safetensors"),
                     test::make_safetensors(shards[s]));
  test::write_file(dir.file("model.safetensors.index.json"),
                   "{\"weight_map\":{" + weight_map + "}}");
  fs::copy_file(stories() + "/config.json", dir.file("config.json"));
  fs::remove(dir.file("shard0.safetensors"));
  fs::remove(dir.file("shard2.safetensors"));

  auto src = open_model(dir.path().string());
  auto blocks = load_blocks(*src, 2, 4, kNoQuant);
  auto ref = open_model(stories());
  for (std::size_t k = 0; k < 2; ++k) {
    auto want = load_block(*ref, 2 + static_cast<std::int64_t>(k), kNoQuant);
    auto got = all_block_tensors(blocks[k]);
    auto exp = all_block_tensors(want);
    for (std::size_t t = 0; t < got.size(); ++t)
      EXPECT_EQ(bytes_of(got[t]), bytes_of(exp[t])) << exp[t].name;
  }
  // The missing shards surface as clear errors only when their tensors are asked for.
  try {
    load_embeddings(*src, kNoQuant);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("shard0.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_block(*src, 4, kNoQuant), std::runtime_error);
}

TEST(ModelSource, GgufAndHfGiveIdenticalTensorsAfterUnpermute) {
  TempDir dir;
  write_stories_gguf(dir.file("s.gguf"), 0);
  auto g = open_model(dir.file("s.gguf"));
  auto h = open_model(stories());
  EXPECT_EQ(g->format(), "gguf");
  const ModelConfig& gc = g->config();
  const ModelConfig& hc = h->config();
  EXPECT_EQ(gc.hidden, hc.hidden);
  EXPECT_EQ(gc.intermediate, hc.intermediate);
  EXPECT_EQ(gc.layers, hc.layers);
  EXPECT_EQ(gc.heads, hc.heads);
  EXPECT_EQ(gc.kv_heads, hc.kv_heads);
  EXPECT_EQ(gc.head_dim, hc.head_dim);
  EXPECT_EQ(gc.vocab, hc.vocab);  // from the tokenizer.ggml.tokens array
  EXPECT_EQ(gc.max_position, hc.max_position);
  EXPECT_FLOAT_EQ(gc.rms_eps, hc.rms_eps);
  EXPECT_FLOAT_EQ(gc.rope.theta, hc.rope.theta);
  EXPECT_EQ(gc.bos_id, 1);
  EXPECT_EQ(gc.eos_ids, std::vector<std::int64_t>{2});
  EXPECT_TRUE(gc.tied_embeddings);
  ASSERT_EQ(g->names(), h->names());
  for (const auto& n : h->names()) {
    HostTensor a = g->load(n), b = h->load(n);
    EXPECT_EQ(a.shape, b.shape) << n;
    EXPECT_EQ(a.dtype, b.dtype) << n;
    EXPECT_TRUE(bytes_of(a) == bytes_of(b)) << n;
  }
  // The GGUF bytes of q_proj really are permuted (so the test above exercised the un-permute).
  GgufFile raw(dir.file("s.gguf"));
  TensorView rq = raw.view("blk.0.attn_q.weight");
  HostTensor hq = h->load("model.layers.0.self_attn.q_proj.weight");
  EXPECT_NE(std::string(reinterpret_cast<const char*>(rq.data.data()), rq.data.size()),
            bytes_of(hq));
}

// Row-wise quantization commutes with the row permutation: a Q8_0/Q4_0/F16 GGUF un-permuted
// equals the HF checkpoint quantized at load.
TEST(ModelSource, QuantizedGgufEqualsHfQuantizedAtLoad) {
  for (auto [type, quant, dt] : {std::tuple{8u, Quant{DType::Q8_0}, DType::Q8_0},
                                 std::tuple{2u, Quant{DType::Q4_0}, DType::Q4_0}}) {
    SCOPED_TRACE(quant_name(quant));
    TempDir dir;
    write_stories_gguf(dir.file("s.gguf"), type);
    auto g = open_model(dir.file("s.gguf"));
    auto h = open_model(stories());
    for (std::int64_t i = 0; i < 5; ++i) {
      auto gb = all_block_tensors(load_block(*g, i, kNoQuant));  // stored dtypes
      auto hb = all_block_tensors(load_block(*h, i, quant));
      for (std::size_t t = 0; t < gb.size(); ++t) {
        EXPECT_EQ(gb[t].dtype, hb[t].dtype) << hb[t].name;
        EXPECT_TRUE(bytes_of(gb[t]) == bytes_of(hb[t])) << hb[t].name;
      }
      EXPECT_EQ(hb[1].dtype, dt);          // q_proj quantized
      EXPECT_EQ(hb[0].dtype, DType::F32);  // norms stay f32
      EXPECT_EQ(hb[8].dtype, DType::F32);  // down_proj: 172 columns, no 32-blocks
    }
    EXPECT_EQ(bytes_of(load_embeddings(*g, kNoQuant)), bytes_of(load_embeddings(*h, quant)));
  }
  TempDir dir;
  write_stories_gguf(dir.file("h.gguf"), 1);
  auto g = open_model(dir.file("h.gguf"));
  auto h = open_model(stories());
  auto gq = g->load("model.layers.1.self_attn.k_proj.weight");
  EXPECT_EQ(gq.dtype, DType::F16);
  EXPECT_EQ(bytes_of(gq), bytes_of(h->load("model.layers.1.self_attn.k_proj.weight", DType::F16)));
  // And a dequantizing load of a quantized GGUF tensor back to f32.
  auto g8 = g->load("model.layers.1.mlp.down_proj.weight", DType::F32);
  EXPECT_EQ(g8.dtype, DType::F32);
  EXPECT_EQ(g8.data.size(), 64u * 172u * 4u);
}

// Hand-worked blocks: amax 127 gives d = 1 exactly, so Q8_0 codes are the rounded values.
TEST(ModelSource, LoadTimeQuantizationGivesExpectedBlockBytes) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = -127.0f;
  x[2] = 0.4f;
  x[3] = 0.6f;
  x[4] = -2.5f;  // rounds away from zero
  x[5] = 3.0f;
  std::string raw = test::f32_bytes(x);
  TensorView v{
      "w", DType::F32, {1, 32}, {reinterpret_cast<const std::byte*>(raw.data()), raw.size()}};
  HostTensor q8 = convert_tensor(v, DType::Q8_0);
  ASSERT_EQ(q8.data.size(), 34u);
  std::vector<std::uint8_t> b(34);
  std::memcpy(b.data(), q8.data.data(), 34);
  EXPECT_EQ(b[0], 0x00);  // f16 1.0 = 0x3C00, little-endian
  EXPECT_EQ(b[1], 0x3C);
  EXPECT_EQ(static_cast<std::int8_t>(b[2]), 127);
  EXPECT_EQ(static_cast<std::int8_t>(b[3]), -127);
  EXPECT_EQ(static_cast<std::int8_t>(b[4]), 0);
  EXPECT_EQ(static_cast<std::int8_t>(b[5]), 1);
  EXPECT_EQ(static_cast<std::int8_t>(b[6]), -3);
  EXPECT_EQ(static_cast<std::int8_t>(b[7]), 3);
  for (int i = 8; i < 34; ++i) EXPECT_EQ(b[i], 0) << i;

  // Q4_0: the signed value of largest magnitude is -8, so d = -8 / -8 = 1 and
  // code = trunc(x + 8.5) clamped to 15; byte j packs codes j (low) and j + 16 (high).
  std::vector<float> y(32, 0.0f);
  y[0] = -8.0f;
  y[1] = 7.0f;
  y[2] = 2.4f;
  y[16] = -1.0f;
  y[17] = 7.9f;
  raw = test::f32_bytes(y);
  v.data = {reinterpret_cast<const std::byte*>(raw.data()), raw.size()};
  HostTensor q4 = convert_tensor(v, DType::Q4_0);
  ASSERT_EQ(q4.data.size(), 18u);
  std::vector<std::uint8_t> c(18);
  std::memcpy(c.data(), q4.data.data(), 18);
  EXPECT_EQ(c[0], 0x00);
  EXPECT_EQ(c[1], 0x3C);
  EXPECT_EQ(c[2], 0x0 | (7 << 4));  // codes 0 (-8) and 7 (-1)
  EXPECT_EQ(c[3], 15 | (15 << 4));  // 7 -> 15; 7.9 -> trunc(16.4) = 16 -> clamped 15
  EXPECT_EQ(c[4], 10 | (8 << 4));   // 2.4 -> 10; 0 -> 8
  for (int i = 5; i < 18; ++i) EXPECT_EQ(c[i], 8 | (8 << 4)) << i;

  TensorView odd{"odd", DType::F32, {2, 3}, {reinterpret_cast<const std::byte*>(raw.data()), 24}};
  EXPECT_THROW(convert_tensor(odd, DType::Q8_0), std::invalid_argument);
}

TEST(ModelSource, ClearErrorsForBadPathsAndMismatchedShapes) {
  EXPECT_THROW(open_model("/nonexistent/kwaai/model"), std::runtime_error);
  TempDir dir;
  EXPECT_THROW(open_model(dir.path().string()), std::runtime_error);  // no config.json
  // A config that disagrees with the checkpoint's shapes: loading names the tensor.
  fs::copy_file(stories() + "/model.safetensors", dir.file("model.safetensors"));
  test::write_file(dir.file("config.json"), R"({"model_type":"llama","hidden_size":64,
    "intermediate_size":128,"num_hidden_layers":5,"num_attention_heads":8,"num_key_value_heads":4,
    "vocab_size":512})");
  auto src = open_model(dir.path().string());
  try {
    load_block(*src, 0, kNoQuant);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[172, 64]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[128, 64]"), std::string::npos) << msg;
  }
  test::write_file(dir.file("x.gguf"), "GGUF");
  EXPECT_THROW(open_model(dir.file("x.gguf")), std::runtime_error);
  test::write_file(dir.file("x.bin"), "abc");
  EXPECT_THROW(open_model(dir.file("x.bin")), std::runtime_error);
}

TEST(ModelSource, GgufWithOtherArchitectureOrRopeFreqsRefused) {
  TempDir dir;
  GgufWriter w;
  w.kv_str("general.architecture", "qwen2");
  test::write_file(dir.file("q.gguf"), w.finish());
  try {
    open_model(dir.file("q.gguf"));
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("qwen2"), std::string::npos);
  }
  GgufWriter m;
  m.kv_str("general.architecture", "llama");
  m.kv_u32("llama.block_count", 1);
  test::write_file(dir.file("m.gguf"), m.finish());
  try {
    open_model(dir.file("m.gguf"));
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("llama.embedding_length"), std::string::npos) << e.what();
  }
  // A Mixtral-style GGUF without its expert_used_count names the missing key.
  GgufWriter x;
  x.kv_str("general.architecture", "llama");
  x.kv_u32("llama.block_count", 1);
  x.kv_u32("llama.expert_count", 8);
  test::write_file(dir.file("x.gguf"), x.finish());
  try {
    open_model(dir.file("x.gguf"));
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("llama.expert_used_count"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kwaai::engine

namespace kwaai::engine {
namespace {

// Large tensors are converted on several threads (engine/model/host_tensor.cpp): the bytes must
// equal the one-row-at-a-time reference for every target, with a row count that does not split
// evenly.
TEST(ConvertTensor, ThreadedConversionOfALargeTensorEqualsRowByRow) {
  const std::int64_t rows = 1027, cols = 2048;  // > 2M values: the threaded path
  std::vector<std::uint16_t> bf(static_cast<std::size_t>(rows * cols));
  std::uint32_t s = 12345;
  for (auto& v : bf) {
    s = s * 1664525u + 1013904223u;
    v = f32_to_bf16(static_cast<float>(static_cast<std::int32_t>(s >> 8) - (1 << 23)) * 1e-8f);
  }
  const TensorView view{"w",
                        DType::BF16,
                        {rows, cols},
                        {reinterpret_cast<const std::byte*>(bf.data()), bf.size() * 2}};
  for (DType t : {DType::F32, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    const HostTensor got = convert_tensor(view, t);
    std::vector<std::byte> want(dtype_bytes(t, rows * cols));
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      to_f32(DType::BF16, bf.data() + r * cols, row.data(), cols);
      from_f32(t, row.data(), want.data() + r * dtype_bytes(t, cols), cols);
    }
    ASSERT_EQ(got.data.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data.data(), want.data(), want.size()), 0);
  }
}

}  // namespace
}  // namespace kwaai::engine
