// `kwaainet quantize` (engine/model/quantize.hpp): llama-quantize's per-tensor type rule, every
// metadata key carried over with its type (nested arrays included), vectors kept, and each
// matrix equal to this project's encoder applied to the decoded input.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "engine/core/formats.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/model_source_impl.hpp"
#include "engine/model/quantize.hpp"
#include "engine/model/tokenizer.hpp"
#include "tests/engine/model/gguf_writer.hpp"
#include "tests/engine/model/test_util.hpp"

namespace kwaai::engine {
namespace {

TEST(Quantize, MixRuleFollowsLlamaQuantize) {
  const Shape m{512, 256}, v{256};
  // 32 layers: use_more_bits is true for 0-3, 28-31 and every third from 6 (6, 9, ..., 27).
  for (std::int64_t i : {0, 3, 6, 9, 27, 28, 31})
    EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_M, "blk." + std::to_string(i) + ".attn_v.weight", m,
                             DType::F16, 32, true),
              DType::Q6_K)
        << i;
  for (std::int64_t i : {4, 5, 7, 8, 26})
    EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_M, "blk." + std::to_string(i) + ".ffn_down.weight", m,
                             DType::F16, 32, true),
              DType::Q4_K)
        << i;
  EXPECT_EQ(quant_mix_type(QuantMix::Q5_K_M, "blk.30.ffn_down.weight", m, DType::F16, 32, true),
            DType::Q6_K);
  EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_S, "blk.0.attn_v.weight", m, DType::F16, 32, true),
            DType::Q4_K);
  EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_M, "blk.0.attn_q.weight", m, DType::F16, 32, true),
            DType::Q4_K);
  // The head: Q6_K except in a Q8_0 file; token_embd is the head when there is no output.weight.
  EXPECT_EQ(quant_mix_type(QuantMix::Q4_0, "output.weight", m, DType::F16, 32, true), DType::Q6_K);
  EXPECT_EQ(quant_mix_type(QuantMix::Q8_0, "output.weight", m, DType::F16, 32, true), DType::Q8_0);
  EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_M, "token_embd.weight", m, DType::F16, 32, true),
            DType::Q4_K);
  EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_M, "token_embd.weight", m, DType::F16, 32, false),
            DType::Q6_K);
  // 70B's attn_v gets Q5_K where the mix would give Q4_K.
  EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_M, "blk.11.attn_v.weight", m, DType::F16, 80, true),
            DType::Q5_K);
  // Vectors keep their type; rows that are not whole super-blocks fall back.
  EXPECT_EQ(quant_mix_type(QuantMix::Q4_K_M, "blk.0.attn_norm.weight", v, DType::F32, 32, true),
            DType::F32);
  EXPECT_EQ(
      quant_mix_type(QuantMix::Q4_K_M, "blk.0.ffn_down.weight", {64, 96}, DType::F16, 32, true),
      DType::Q8_0);
  EXPECT_EQ(
      quant_mix_type(QuantMix::Q6_K, "blk.0.ffn_down.weight", {64, 172}, DType::F32, 32, true),
      DType::F16);
  EXPECT_EQ(quant_mix_from_name("q4_k"), QuantMix::Q4_K_S);
  EXPECT_THROW(quant_mix_from_name("q3_k_m"), std::invalid_argument);
}

TEST(Quantize, CopiesMetadataAndEncodesEveryMatrixOfTheMix) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  auto f16_bytes = [&](std::size_t n) {
    std::vector<float> f(n);
    for (auto& x : f) x = nd(gen);
    std::string s(n * 2, '\0');
    from_f32(DType::F16, f.data(), s.data(), static_cast<std::int64_t>(n));
    return s;
  };
  auto f32_bytes = [&](std::size_t n) {
    std::string s(n * 4, '\0');
    for (std::size_t i = 0; i < n; ++i) {
      const float x = 1.0f + nd(gen);
      std::memcpy(s.data() + 4 * i, &x, 4);
    }
    return s;
  };
  test::GgufWriter w;
  w.kv_str("general.architecture", "llama");
  w.kv_u32("llama.block_count", 2);
  w.kv_u32("general.file_type", 1);
  w.kv_str_array("tokenizer.ggml.tokens", {"<s>", "a", ""});
  w.kv_raw("i16", test::GgufWriter::I16, test::GgufWriter::raw<std::int16_t>(-30000));
  const std::string inner = test::GgufWriter::raw<std::uint32_t>(test::GgufWriter::U8) +
                            test::GgufWriter::raw<std::uint64_t>(2) + "\x07\x08";
  w.kv_raw("nested", test::GgufWriter::ARRAY,
           test::GgufWriter::raw<std::uint32_t>(test::GgufWriter::ARRAY) +
               test::GgufWriter::raw<std::uint64_t>(2) + inner + inner);
  w.tensor("token_embd.weight", 1, {256, 40}, f16_bytes(256 * 40));
  for (int i = 0; i < 2; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    w.tensor(b + "attn_norm.weight", 0, {256}, f32_bytes(256));
    w.tensor(b + "attn_v.weight", 1, {256, 64}, f16_bytes(256 * 64));
    w.tensor(b + "ffn_down.weight", 1, {512, 256}, f16_bytes(512 * 256));
    w.tensor(b + "ffn_up.weight", 1, {256, 512}, f16_bytes(256 * 512));
  }
  w.tensor("output.weight", 1, {256, 40}, f16_bytes(256 * 40));
  test::TempDir dir;
  test::write_file(dir.file("in.gguf"), w.finish());

  const QuantizeReport r =
      quantize_gguf(dir.file("in.gguf"), dir.file("out.gguf"), QuantMix::Q4_K_M, 3);
  EXPECT_EQ(r.tensors, 10);
  const GgufFile in(dir.file("in.gguf")), out(dir.file("out.gguf"));
  // Metadata: every key with its value, file_type set to MOSTLY_Q4_K_M (15).
  for (const auto& [key, value] : in.header().kv) {
    SCOPED_TRACE(key);
    const GgufValue* o = out.header().find(key);
    ASSERT_NE(o, nullptr);
    if (key == "general.file_type") {
      EXPECT_EQ(o->as_int(), 15);
      continue;
    }
    EXPECT_EQ(o->type, value.type);
  }
  EXPECT_EQ(out.header().find("i16")->as_int(), -30000);
  EXPECT_EQ(out.header().find("tokenizer.ggml.tokens")->as_array()[1].as_string(), "a");
  const auto& nested = out.header().find("nested")->as_array();
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested[1].as_array()[1].as_int(), 8);
  // Tensors: types by the rule (2 layers: use_more_bits only for layer 1), bytes by the encoder.
  const std::pair<const char*, DType> want[] = {
      {"token_embd.weight", DType::Q4_K},     {"blk.0.attn_norm.weight", DType::F32},
      {"blk.0.attn_v.weight", DType::Q4_K},   {"blk.1.attn_v.weight", DType::Q6_K},
      {"blk.0.ffn_down.weight", DType::Q4_K}, {"blk.1.ffn_down.weight", DType::Q6_K},
      {"blk.1.ffn_up.weight", DType::Q4_K},   {"output.weight", DType::Q6_K}};
  for (const auto& [name, type] : want) {
    SCOPED_TRACE(name);
    const TensorView a = in.view(name), b = out.view(name);
    ASSERT_EQ(b.dtype, type);
    EXPECT_EQ(b.shape, a.shape);
    std::vector<float> f(static_cast<std::size_t>(a.numel()));
    to_f32(a.dtype, a.data.data(), f.data(), a.numel());
    std::vector<std::byte> enc(dtype_bytes(type, a.numel()));
    from_f32(type, f.data(), enc.data(), a.numel());
    ASSERT_EQ(enc.size(), b.data.size());
    EXPECT_EQ(std::memcmp(enc.data(), b.data.data(), enc.size()), 0);
  }
}

TEST(Quantize, RefusesAMissingOrBrokenInputNamingIt) {
  test::TempDir dir;
  try {
    quantize_gguf(dir.file("absent.gguf"), dir.file("o.gguf"), QuantMix::Q8_0, 1);
    FAIL() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.gguf"), std::string::npos) << e.what();
  }
  test::write_file(dir.file("cut.gguf"), "GGUF\x03");
  EXPECT_THROW(quantize_gguf(dir.file("cut.gguf"), dir.file("o.gguf"), QuantMix::Q8_0, 1),
               std::runtime_error);
}

// An HF folder of stories260K's config and weights with one of the test tokenizers.
std::string hf_folder(const test::TempDir& dir, const std::string& tokenizer,
                      const std::string& model = test::shared_model_dir()) {
  namespace fs = std::filesystem;
  const fs::path d = dir.path() / "hf";
  fs::create_directories(d);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(fs::path(model) / f, d / f);
  fs::copy_file(fs::path(test::data_dir()) / tokenizer, d / "tokenizer.json");
  return d.string();
}

// HF -> GGUF (kwaainet quantize on a folder): read back through the GGUF source (names mapped,
// q/k rows un-permuted), every tensor equals the HF tensor converted to the type the mix gives
// it, byte for byte, and the config survives. Q8_0 and Q4_K_M (K-quant rows where they fit,
// Q8_0/F16 fallbacks, Q6_K for the head).
TEST(QuantizeHf, EveryTensorReadsBackAsTheHfTensorInTheMixType) {
  test::TempDir dir;
  const std::string hf = hf_folder(dir, "sp_tokenizer.json");
  for (QuantMix mix : {QuantMix::Q8_0, QuantMix::Q4_K_M}) {
    SCOPED_TRACE(quant_mix_name(mix));
    const std::string out = dir.file(quant_mix_name(mix) + ".gguf");
    const QuantizeReport rep = quantize_hf(hf, out, mix, 2);
    const auto a = open_model(hf), b = open_model(out);
    const ModelConfig &ca = a->config(), &cb = b->config();
    EXPECT_EQ(cb.layers, ca.layers);
    EXPECT_EQ(cb.hidden, ca.hidden);
    EXPECT_EQ(cb.intermediate, ca.intermediate);
    EXPECT_EQ(cb.heads, ca.heads);
    EXPECT_EQ(cb.kv_heads, ca.kv_heads);
    EXPECT_EQ(cb.head_dim, ca.head_dim);
    EXPECT_EQ(cb.vocab, ca.vocab);
    EXPECT_FLOAT_EQ(cb.rms_eps, ca.rms_eps);
    EXPECT_FLOAT_EQ(cb.rope.theta, ca.rope.theta);
    EXPECT_TRUE(cb.tied_embeddings);
    std::int64_t checked = 0;
    for (const std::string& n : a->names()) {
      if (n == kLmHeadName) continue;
      SCOPED_TRACE(n);
      const HostTensor want_raw = a->load(n);
      const HostTensor got = b->load(n);
      ASSERT_EQ(got.shape, want_raw.shape);
      if (want_raw.shape.size() == 1) {
        EXPECT_EQ(got.dtype, DType::F32);
        EXPECT_EQ(got.data, want_raw.data);  // stories260K stores f32 norms
      } else {
        const DType t = quant_mix_type(mix, detail::gguf_tensor_name(n), want_raw.shape,
                                       want_raw.dtype, ca.layers, false);
        EXPECT_EQ(got.dtype, t);
        const HostTensor want =
            convert_tensor(TensorView{n, want_raw.dtype, want_raw.shape, want_raw.bytes()}, t);
        EXPECT_TRUE(got.data == want.data);
      }
      ++checked;
    }
    EXPECT_EQ(checked, rep.tensors);
    EXPECT_EQ(checked, 2 + 9 * ca.layers);
  }
}

// The tokenizer travels as tokenizer.ggml.*: both test vocabularies (SentencePiece-style BPE
// as "llama" with rank scores, byte-level BPE as "gpt2" + merges) encode a corpus to the same
// ids from the GGUF file as from tokenizer.json.
TEST(QuantizeHf, TheTokenizerEncodesTheSameFromTheGgufFile) {
  // The SentencePiece test vocabulary lacks byte tokens for most characters; text with such a
  // character would compare tokenizer.json's fuse_unk (runs of <unk> become one), which a GGUF
  // vocabulary has no flag for, so its corpus keeps to characters it covers (real Llama 2
  // vocabularies hold all 256 byte tokens and never produce <unk>).
  const std::vector<std::string> sp_corpus = {
      "hello world",       "hello",        "hell", " hello",
      "hello<s>hello</s>", "ll",           "h\nh", "h\xF0\x9F\x98\x80",
      "  hello   world  ", "<s>hello</s>", ""};
  std::vector<std::string> bl_corpus = sp_corpus;
  for (const char* t : {"he's 12345 I'LL", "hi ?!", "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \t\n x"})
    bl_corpus.emplace_back(t);
  for (const char* file : {"sp_tokenizer.json", "bl_tokenizer.json"}) {
    SCOPED_TRACE(file);
    const auto& corpus = std::string(file) == "sp_tokenizer.json" ? sp_corpus : bl_corpus;
    test::TempDir dir;
    const std::string hf = hf_folder(dir, file);
    quantize_hf(hf, dir.file("m.gguf"), QuantMix::Q8_0, 1);
    const Tokenizer j = Tokenizer::from_file(hf + "/tokenizer.json");
    const auto g = Tokenizer::from_gguf(dir.file("m.gguf"));
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->kind(), j.kind());
    EXPECT_EQ(g->vocab_size(), j.vocab_size());
    EXPECT_EQ(g->bos_id(), j.bos_id());
    EXPECT_EQ(g->eos_id(), j.eos_id());
    for (const auto& text : corpus) {
      SCOPED_TRACE(text);
      EXPECT_EQ(g->encode(text), j.encode(text));
      EXPECT_EQ(g->encode(text, true), j.encode(text, true));
    }
  }
}

// Mixtral: the router (kept f32, as llama.cpp writes ffn_gate_inp) and the experts stacked into
// ffn_{gate,up,down}_exps [experts, rows, cols]; read back, each expert is its own HF tensor in
// the mix type again, and the config keeps its expert counts.
TEST(QuantizeHf, MixtralExpertsAreStackedAndReadBackPerExpert) {
  test::TempDir dir;
  const std::string hf =
      hf_folder(dir, "sp_tokenizer.json", std::string(KWAAI_SHARED_DIR) + "/models/tiny-mixtral");
  const std::string out = dir.file("m.gguf");
  quantize_hf(hf, out, QuantMix::Q8_0, 2);
  const auto a = open_model(hf), b = open_model(out);
  EXPECT_EQ(b->config().experts, 4);
  EXPECT_EQ(b->config().experts_per_token, 2);
  EXPECT_FALSE(b->config().tied_embeddings);
  const GgufFile g(out);
  ASSERT_NE(g.find("blk.1.ffn_down_exps.weight"), nullptr);
  EXPECT_EQ(g.find("blk.1.ffn_down_exps.weight")->shape, (Shape{4, 64, 96}));
  EXPECT_EQ(g.find("blk.0.ffn_gate_inp.weight")->dtype, DType::F32);
  std::int64_t experts = 0;
  for (const std::string& n : a->names()) {
    SCOPED_TRACE(n);
    const HostTensor want_raw = a->load(n), got = b->load(n);
    ASSERT_EQ(got.shape, want_raw.shape);
    const bool router = n.ends_with("block_sparse_moe.gate.weight");
    const DType t = want_raw.shape.size() == 1 || router ? DType::F32 : DType::Q8_0;
    EXPECT_EQ(got.dtype, t);
    const HostTensor want =
        convert_tensor(TensorView{n, want_raw.dtype, want_raw.shape, want_raw.bytes()}, t);
    EXPECT_TRUE(got.data == want.data);
    experts += n.find(".experts.") != std::string::npos;
  }
  EXPECT_EQ(experts, 3 * 4 * 3);  // w1/w2/w3 x 4 experts x 3 blocks
  EXPECT_EQ(b->names().size(), a->names().size());
}

TEST(QuantizeHf, OtherFamiliesAndAFolderWithoutATokenizerAreRefusedByName) {
  test::TempDir dir;
  auto refused = [&](const std::string& in, const std::string& what) {
    try {
      quantize_hf(in, dir.file("x.gguf"), QuantMix::Q8_0, 1);
      ADD_FAILURE() << in;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  refused(std::string(KWAAI_SHARED_DIR) + "/models/tiny-bloom", "Llama family only");
  refused(std::string(KWAAI_SHARED_DIR) + "/models/tiny-mistral", "sliding window");
  refused(test::shared_model_dir(), "tokenizer.json");
}

}  // namespace
}  // namespace kwaai::engine
