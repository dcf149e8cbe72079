#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "engine/model/safetensors.hpp"
#include "tests/engine/model/test_util.hpp"

namespace kwaai::engine {
namespace {

using test::TempDir;

// Expects parse to throw std::runtime_error whose message contains every fragment.
void expect_rejected(const std::string& file_bytes, std::initializer_list<const char*> fragments) {
  std::span<const std::byte> s(reinterpret_cast<const std::byte*>(file_bytes.data()),
                               file_bytes.size());
  try {
    parse_safetensors(s, "bad.safetensors");
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    for (const char* f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
  }
}

std::string tensor_json(const char* name, const char* dtype, const char* shape,
                        const char* offsets) {
  return std::string("\"") + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

TEST(Safetensors, Stories260KAllTensorsPresentWithHfShapes) {
  SafetensorsFile f(test::shared_model_dir() + "/model.safetensors");
  EXPECT_EQ(f.header().tensors.size(), 2u + 5u * 9u);
  auto emb = f.view("model.embed_tokens.weight");
  EXPECT_EQ(emb.dtype, DType::F32);
  EXPECT_EQ(emb.shape, (Shape{512, 64}));
  EXPECT_EQ(emb.data.size(), 512u * 64u * 4u);
  for (int i = 0; i < 5; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    EXPECT_EQ(f.view(p + "self_attn.q_proj.weight").shape, (Shape{64, 64}));
    EXPECT_EQ(f.view(p + "self_attn.k_proj.weight").shape, (Shape{32, 64}));
    EXPECT_EQ(f.view(p + "self_attn.v_proj.weight").shape, (Shape{32, 64}));
    EXPECT_EQ(f.view(p + "self_attn.o_proj.weight").shape, (Shape{64, 64}));
    EXPECT_EQ(f.view(p + "mlp.gate_proj.weight").shape, (Shape{172, 64}));
    EXPECT_EQ(f.view(p + "mlp.up_proj.weight").shape, (Shape{172, 64}));
    EXPECT_EQ(f.view(p + "mlp.down_proj.weight").shape, (Shape{64, 172}));
    EXPECT_EQ(f.view(p + "input_layernorm.weight").shape, (Shape{64}));
    EXPECT_EQ(f.view(p + "post_attention_layernorm.weight").shape, (Shape{64}));
  }
  EXPECT_FALSE(f.has("lm_head.weight"));
  EXPECT_THROW(f.view("lm_head.weight"), std::out_of_range);
}

TEST(Safetensors, Stories260KValuesMatchIndependentReader) {
  const std::string path = test::shared_model_dir() + "/model.safetensors";
  SafetensorsFile f(path);
  for (const char* name : {"model.embed_tokens.weight", "model.layers.2.mlp.down_proj.weight",
                           "model.layers.4.self_attn.k_proj.weight", "model.norm.weight"}) {
    SCOPED_TRACE(name);
    auto ref = test::reference_read_f32(path, name);
    auto v = f.view(name);
    auto got = test::as_f32(v.data.data(), v.data.size());
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_EQ(got, ref);  // same bytes: exact
    EXPECT_NE(ref.front(), 0.0f);
  }
}

TEST(Safetensors, ReferenceFileI32TensorsAndMetadata) {
  SafetensorsFile f(test::shared_model_dir() + "/reference.safetensors");
  auto ids = f.view("greedy_from_bos");
  EXPECT_EQ(ids.dtype, DType::I32);
  EXPECT_EQ(ids.shape, (Shape{128}));
  EXPECT_EQ(f.header().metadata.at("greedy_steps"), "128");
}

TEST(Safetensors, AcceptsF16Bf16AndEmptyTensors) {
  std::string data(4 + 4, '\x01');
  std::string h = "{" + tensor_json("a", "F16", "[2]", "[0,4]") + "," +
                  tensor_json("b", "BF16", "[1,2]", "[4,8]") + "," +
                  tensor_json("e", "F32", "[0,7]", "[8,8]") +
                  ",\"__metadata__\":{\"format\":\"pt\"}}";
  auto bytes = test::safetensors_bytes(h, data);
  auto hdr =
      parse_safetensors({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, "ok");
  ASSERT_EQ(hdr.tensors.size(), 3u);
  EXPECT_EQ(hdr.metadata.at("format"), "pt");
}

TEST(Safetensors, RejectsTruncatedAndLyingHeaders) {
  expect_rejected("", {"shorter than the 8-byte"});
  expect_rejected(std::string("\x05\0\0\0", 4), {"shorter than the 8-byte"});
  expect_rejected(test::le64(1000) + "{}", {"runs past the end"});
  expect_rejected(test::le64(1ull << 40) + "{}", {"exceeds the limit"});
  expect_rejected(test::safetensors_bytes("{\"a\":", ""), {"not valid JSON"});
  expect_rejected(test::safetensors_bytes("[1,2]", ""), {"not an object"});
}

TEST(Safetensors, RejectsUnsupportedDtypeNamingIt) {
  auto b = test::safetensors_bytes("{" + tensor_json("w", "F64", "[1]", "[0,8]") + "}",
                                   std::string(8, '\0'));
  expect_rejected(b, {"'w'", "F64", "not supported"});
  b = test::safetensors_bytes("{" + tensor_json("w", "I8", "[1]", "[0,1]") + "}",
                              std::string(1, '\0'));
  expect_rejected(b, {"I8"});
}

TEST(Safetensors, RejectsBadShapes) {
  expect_rejected(test::safetensors_bytes("{" + tensor_json("w", "F32", "[-1]", "[0,4]") + "}",
                                          std::string(4, '\0')),
                  {"negative dimension"});
  expect_rejected(
      test::safetensors_bytes(
          "{" + tensor_json("w", "F32", "[4294967296,4294967296,4294967296]", "[0,4]") + "}",
          std::string(4, '\0')),
      {"overflows"});
  expect_rejected(test::safetensors_bytes("{" + tensor_json("w", "F32", "[1.5]", "[0,4]") + "}",
                                          std::string(4, '\0')),
                  {"integers"});
  expect_rejected(
      test::safetensors_bytes("{" + tensor_json("w", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") + "}",
                              std::string(4, '\0')),
      {"rank 9"});
}

TEST(Safetensors, RejectsOffsetsOutsideDataOrWrongSize) {
  expect_rejected(test::safetensors_bytes("{" + tensor_json("w", "F32", "[2]", "[0,8]") + "}",
                                          std::string(4, '\0')),
                  {"'w'", "outside the data region"});
  expect_rejected(test::safetensors_bytes("{" + tensor_json("w", "F32", "[2]", "[8,0]") + "}",
                                          std::string(8, '\0')),
                  {"outside the data region"});
  expect_rejected(test::safetensors_bytes("{" + tensor_json("w", "F32", "[3]", "[0,8]") + "}",
                                          std::string(8, '\0')),
                  {"'w'", "8 bytes", "needs 12"});
  expect_rejected(test::safetensors_bytes("{" + tensor_json("w", "F32", "[1]", "[0]") + "}",
                                          std::string(4, '\0')),
                  {"[begin, end]"});
  expect_rejected(test::safetensors_bytes("{" + tensor_json("w", "F32", "[1]", "[-4,0]") + "}",
                                          std::string(4, '\0')),
                  {"non-negative"});
}

TEST(Safetensors, RejectsOverlappingTensors) {
  std::string h = "{" + tensor_json("a", "F32", "[2]", "[0,8]") + "," +
                  tensor_json("b", "F32", "[2]", "[4,12]") + "}";
  expect_rejected(test::safetensors_bytes(h, std::string(12, '\0')), {"'a'", "'b'", "overlap"});
  // Contained inside a larger tensor, listed first.
  h = "{" + tensor_json("small", "F32", "[1]", "[4,8]") + "," +
      tensor_json("big", "F32", "[4]", "[0,16]") + "}";
  expect_rejected(test::safetensors_bytes(h, std::string(16, '\0')), {"overlap"});
}

TEST(Safetensors, RejectsBadMetadata) {
  expect_rejected(test::safetensors_bytes("{\"__metadata__\":{\"k\":1}}", ""), {"__metadata__"});
  expect_rejected(test::safetensors_bytes("{\"w\":3}", ""), {"'w'", "not an object"});
}

TEST(Safetensors, MissingFileGivesErrorNamingPath) {
  try {
    SafetensorsFile f("/nonexistent/kwaai/x.safetensors");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/kwaai/x.safetensors"), std::string::npos);
  }
}

// Two shards + index; only the shard of the requested tensor is opened, and loading works
// while the other shard is absent from disk.
TEST(SafetensorsCheckpoint, ShardedOpensOnlyNeededShards) {
  TempDir dir;
  test::write_file(dir.file("model-00001-of-00002.safetensors"),
                   test::make_safetensors({{"a", "F32", {2}, test::f32_bytes({1.0f, 2.0f})}}));
  test::write_file(dir.file("model-00002-of-00002.safetensors"),
                   test::make_safetensors({{"b", "F32", {1}, test::f32_bytes({3.0f})}}));
  test::write_file(
      dir.file("model.safetensors.index.json"),
      R"({"metadata":{"total_size":12},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
      R"("b":"model-00002-of-00002.safetensors","c":"model-00003-of-00003.safetensors"}})");
  SafetensorsCheckpoint ck(dir.path().string());
  EXPECT_TRUE(ck.sharded());
  EXPECT_TRUE(ck.opened_shards().empty());
  auto a = ck.view("a");
  EXPECT_EQ(test::as_f32(a.data.data(), a.data.size()), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(ck.opened_shards(), std::vector<std::string>{"model-00001-of-00002.safetensors"});
  // "c" is mapped to a shard that does not exist: a clear error only when c is asked for.
  try {
    ck.view("c");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("model-00003-of-00003.safetensors"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ck.view("zzz"), std::out_of_range);
}

TEST(SafetensorsCheckpoint, IndexPointingOutsideFolderRefused) {
  TempDir dir;
  test::write_file(dir.file("model.safetensors.index.json"),
                   R"({"weight_map":{"a":"../x.safetensors"}})");
  EXPECT_THROW(SafetensorsCheckpoint ck(dir.path().string()), std::runtime_error);
  test::write_file(dir.file("model.safetensors.index.json"), R"({"weight_map":[]})");
  EXPECT_THROW(SafetensorsCheckpoint ck(dir.path().string()), std::runtime_error);
}

TEST(SafetensorsCheckpoint, ShardWithoutTheMappedTensorIsAnError) {
  TempDir dir;
  test::write_file(dir.file("s1.safetensors"),
                   test::make_safetensors({{"a", "F32", {1}, test::f32_bytes({1.0f})}}));
  test::write_file(dir.file("model.safetensors.index.json"),
                   R"({"weight_map":{"b":"s1.safetensors"}})");
  SafetensorsCheckpoint ck(dir.path().string());
  EXPECT_THROW(ck.view("b"), std::runtime_error);
}

}  // namespace
}  // namespace kwaai::engine
