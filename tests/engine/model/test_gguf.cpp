#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/core/dtype.hpp"
#include "engine/model/gguf.hpp"
#include "tests/engine/model/gguf_writer.hpp"
#include "tests/engine/model/test_util.hpp"

namespace kwaai::engine {
namespace {

using test::GgufWriter;

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string bytes_str(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void expect_rejected(const std::string& file, std::initializer_list<const char*> fragments) {
  try {
    parse_gguf(as_bytes(file), "bad.gguf");
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
    for (const char* f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
  }
}

struct Blobs {
  std::string f32, f16, bf16, q8, q4;
};

// Tensors of every accepted type from random values (seed printed on failure).
Blobs make_blobs(std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> v(64 * 2);
  for (auto& x : v) x = u(rng);
  Blobs b;
  b.f32 = test::f32_bytes(std::vector<float>(v.begin(), v.begin() + 12));
  b.f16.resize(8 * 2);
  from_f32(DType::F16, v.data(), b.f16.data(), 8);
  b.bf16.resize(4 * 2);
  from_f32(DType::BF16, v.data(), b.bf16.data(), 4);
  b.q8.resize(dtype_bytes(DType::Q8_0, 128));
  from_f32(DType::Q8_0, v.data(), b.q8.data(), 128);
  b.q4.resize(dtype_bytes(DType::Q4_0, 32));
  from_f32(DType::Q4_0, v.data(), b.q4.data(), 32);
  return b;
}

GgufWriter writer_with_all_types(const Blobs& b) {
  GgufWriter w;
  w.kv_str("general.architecture", "llama");
  w.kv_raw("u8", GgufWriter::U8, GgufWriter::raw<std::uint8_t>(200));
  w.kv_raw("i8", GgufWriter::I8, GgufWriter::raw<std::int8_t>(-5));
  w.kv_raw("u16", GgufWriter::U16, GgufWriter::raw<std::uint16_t>(60000));
  w.kv_raw("i16", GgufWriter::I16, GgufWriter::raw<std::int16_t>(-30000));
  w.kv_u32("u32", 4000000000u);
  w.kv_i32("i32", -2000000000);
  w.kv_f32("f32", 0.25f);
  w.kv_bool("bool", true);
  w.kv_str("string", "h\xC3\xA9llo");
  w.kv_u64("u64", 1ull << 40);
  w.kv_raw("i64", GgufWriter::I64, GgufWriter::raw<std::int64_t>(-(1ll << 40)));
  w.kv_raw("f64", GgufWriter::F64, GgufWriter::raw<double>(1e-300));
  w.kv_str_array("tokens", {"<s>", "a", ""});
  w.kv_i32_array("types", {1, 2, 3});
  // array of arrays of u8
  std::string inner = GgufWriter::raw<std::uint32_t>(GgufWriter::U8) +
                      GgufWriter::raw<std::uint64_t>(2) + "\x07\x08";
  w.kv_raw("nested", GgufWriter::ARRAY,
           GgufWriter::raw<std::uint32_t>(GgufWriter::ARRAY) + GgufWriter::raw<std::uint64_t>(2) +
               inner + inner);
  w.tensor("t.f32", 0, {4, 3}, b.f32);
  w.tensor("t.f16", 1, {8}, b.f16);
  w.tensor("t.bf16", 30, {2, 2}, b.bf16);
  w.tensor("t.q8", 8, {64, 2}, b.q8);
  w.tensor("t.q4", 2, {32, 1}, b.q4);
  return w;
}

TEST(Gguf, RoundTripsMetadataOfEveryTypeAndTensorsOfEveryAcceptedType) {
  const std::uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Blobs b = make_blobs(seed);
  test::TempDir dir;
  test::write_file(dir.file("m.gguf"), writer_with_all_types(b).finish());
  GgufFile f(dir.file("m.gguf"));
  const GgufHeader& h = f.header();
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(h.alignment, 32u);
  EXPECT_EQ(h.data_start % 32, 0u);
  EXPECT_EQ(h.find("general.architecture")->as_string(), "llama");
  EXPECT_EQ(h.find("u8")->as_int(), 200);
  EXPECT_EQ(h.find("i8")->as_int(), -5);
  EXPECT_EQ(h.find("u16")->as_int(), 60000);
  EXPECT_EQ(h.find("i16")->as_int(), -30000);
  EXPECT_EQ(h.find("u32")->as_int(), 4000000000ll);
  EXPECT_EQ(h.find("i32")->as_int(), -2000000000ll);
  EXPECT_EQ(h.find("f32")->as_float(), 0.25);
  EXPECT_TRUE(h.find("bool")->as_bool());
  EXPECT_EQ(h.find("string")->as_string(), "h\xC3\xA9llo");
  EXPECT_EQ(h.find("u64")->as_int(), 1ll << 40);
  EXPECT_EQ(h.find("i64")->as_int(), -(1ll << 40));
  EXPECT_EQ(h.find("f64")->as_float(), 1e-300);
  const auto& toks = h.find("tokens")->as_array();
  ASSERT_EQ(toks.size(), 3u);
  EXPECT_EQ(toks[1].as_string(), "a");
  EXPECT_EQ(toks[2].as_string(), "");
  EXPECT_EQ(h.find("types")->as_array()[2].as_int(), 3);
  EXPECT_EQ(h.find("nested")->as_array()[1].as_array()[1].as_int(), 8);
  EXPECT_THROW(h.find("string")->as_int(), std::runtime_error);
  EXPECT_THROW(h.find("u32")->as_string(), std::runtime_error);

  auto v = f.view("t.f32");
  EXPECT_EQ(v.dtype, DType::F32);
  EXPECT_EQ(v.shape, (Shape{3, 4}));  // ne reversed: slowest first
  EXPECT_EQ(bytes_str(v.data), b.f32);
  v = f.view("t.f16");
  EXPECT_EQ(v.dtype, DType::F16);
  EXPECT_EQ(v.shape, (Shape{8}));
  EXPECT_EQ(bytes_str(v.data), b.f16);
  v = f.view("t.bf16");
  EXPECT_EQ(v.dtype, DType::BF16);
  EXPECT_EQ(bytes_str(v.data), b.bf16);
  v = f.view("t.q8");
  EXPECT_EQ(v.dtype, DType::Q8_0);
  EXPECT_EQ(v.shape, (Shape{2, 64}));
  EXPECT_EQ(v.data.size(), 2u * 2u * 34u);
  EXPECT_EQ(bytes_str(v.data), b.q8);
  v = f.view("t.q4");
  EXPECT_EQ(v.dtype, DType::Q4_0);
  EXPECT_EQ(v.data.size(), 18u);
  EXPECT_EQ(bytes_str(v.data), b.q4);
  EXPECT_THROW(f.view("nope"), std::out_of_range);
}

TEST(Gguf, HonoursGeneralAlignment) {
  GgufWriter w;
  w.kv_u32("general.alignment", 256);
  w.tensor("a", 0, {3}, test::f32_bytes({1, 2, 3}));
  w.tensor("b", 0, {1}, test::f32_bytes({4}));
  auto bytes = w.finish(256);
  auto h = parse_gguf(as_bytes(bytes), "aligned.gguf");
  EXPECT_EQ(h.alignment, 256u);
  EXPECT_EQ(h.data_start % 256, 0u);
  EXPECT_EQ(h.tensors[1].offset, 256u);
  // The same layout under the default alignment of 32 puts 'b' at a valid 32-multiple too, but a
  // non-power-of-two alignment is refused.
  GgufWriter bad;
  bad.kv_u32("general.alignment", 48);
  expect_rejected(bad.finish(), {"general.alignment 48"});
}

TEST(Gguf, RefusesUnsupportedTensorTypeNamingIt) {
  GgufWriter w;
  // Q3_K (type 11, 110 bytes per 256 values): a real GGUF type without a format-table row.
  w.tensor("blk.0.attn_q.weight", 11, {256, 1}, std::string(110, '\0'));
  expect_rejected(w.finish(), {"blk.0.attn_q.weight", "Q3_K (type 11) is not supported"});
  GgufWriter w2;
  w2.tensor("x", 1234, {32}, std::string(64, '\0'));
  expect_rejected(w2.finish(), {"type 1234 is not supported"});
}

TEST(Gguf, RejectsBadMagicAndVersion) {
  expect_rejected("GGML" + std::string(20, '\0'), {"bad magic"});
  GgufWriter w;
  w.version = 1;
  expect_rejected(w.finish(), {"version 1"});
}

TEST(Gguf, EveryTruncationIsAClearError) {
  Blobs b = make_blobs(7);
  const std::string full = writer_with_all_types(b).finish();
  ASSERT_NO_THROW(parse_gguf(as_bytes(full), "full.gguf"));
  for (std::size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("prefix " + std::to_string(n));
    EXPECT_THROW(parse_gguf(as_bytes(full.substr(0, n)), "cut.gguf"), std::runtime_error);
  }
}

TEST(Gguf, RejectsHugeCountsAndLengthsWithoutAllocating) {
  auto head = [](std::uint64_t nt, std::uint64_t nkv) {
    return "GGUF" + GgufWriter::raw<std::uint32_t>(3) + GgufWriter::raw(nt) + GgufWriter::raw(nkv);
  };
  expect_rejected(head(1ull << 40, 0), {"tensors exceed the limit"});
  expect_rejected(head(0, ~0ull), {"metadata entries exceed the limit"});
  // A key whose length is 2^62.
  expect_rejected(head(0, 1) + GgufWriter::raw<std::uint64_t>(1ull << 62), {"exceeds the limit"});
  // An array claiming 2^23 u32 elements in a tiny file, and one over the array limit.
  std::string arr = head(0, 1) + GgufWriter::str("k") +
                    GgufWriter::raw<std::uint32_t>(GgufWriter::ARRAY) +
                    GgufWriter::raw<std::uint32_t>(GgufWriter::U32);
  expect_rejected(arr + GgufWriter::raw<std::uint64_t>(1ull << 23), {"truncated"});
  expect_rejected(arr + GgufWriter::raw<std::uint64_t>(1ull << 60), {"'k'", "exceeds the limit"});
  // Unknown value type, bad bool.
  expect_rejected(head(0, 1) + GgufWriter::str("k") + GgufWriter::raw<std::uint32_t>(99),
                  {"unknown value type 99"});
  expect_rejected(
      head(0, 1) + GgufWriter::str("k") + GgufWriter::raw<std::uint32_t>(GgufWriter::BOOL) + "\x05",
      {"bool value 5"});
}

TEST(Gguf, RejectsBadTensorInfos) {
  {
    GgufWriter w;  // dimension count 0 / 5
    w.tensor("z", 0, {}, "");
    expect_rejected(w.finish(), {"'z'", "0 dimensions"});
    GgufWriter w5;
    w5.tensor("z", 0, {1, 1, 1, 1, 1}, std::string(4, '\0'));
    expect_rejected(w5.finish(), {"5 dimensions"});
  }
  {
    GgufWriter w;  // absurd shape
    w.tensor("huge", 0, {1ull << 40, 1ull << 40}, "");
    expect_rejected(w.finish(), {"'huge'", "absurd"});
  }
  {
    GgufWriter w;  // quantized row not a multiple of 32
    w.tensor("q", 8, {48}, std::string(51, '\0'));
    expect_rejected(w.finish(), {"'q'", "multiple of the 32"});
  }
  {
    GgufWriter w;  // data past the end of the file
    w.tensor("a", 0, {1000}, test::f32_bytes({1}));
    expect_rejected(w.finish(), {"'a'", "past the data region"});
  }
  {
    GgufWriter w;  // duplicate names
    w.tensor("a", 0, {1}, test::f32_bytes({1}));
    w.tensor("a", 0, {1}, test::f32_bytes({1}));
    expect_rejected(w.finish(), {"duplicate tensor 'a'"});
  }
}

// Tensor infos edited by hand: offsets that overlap or are not aligned.
TEST(Gguf, RejectsOverlappingAndMisalignedOffsets) {
  auto build = [](std::uint64_t off_b) {
    std::string s = "GGUF" + GgufWriter::raw<std::uint32_t>(3) + GgufWriter::raw<std::uint64_t>(2) +
                    GgufWriter::raw<std::uint64_t>(0);
    s += GgufWriter::str("a") + GgufWriter::raw<std::uint32_t>(1) +
         GgufWriter::raw<std::uint64_t>(16) + GgufWriter::raw<std::uint32_t>(0) +
         GgufWriter::raw<std::uint64_t>(0);
    s += GgufWriter::str("b") + GgufWriter::raw<std::uint32_t>(1) +
         GgufWriter::raw<std::uint64_t>(16) + GgufWriter::raw<std::uint32_t>(0) +
         GgufWriter::raw<std::uint64_t>(off_b);
    while (s.size() % 32) s.push_back('\0');
    return s + std::string(256, '\0');
  };
  ASSERT_NO_THROW(parse_gguf(as_bytes(build(64)), "ok.gguf"));
  expect_rejected(build(32), {"'a'", "'b'", "overlap"});
  expect_rejected(build(0), {"overlap"});
  expect_rejected(build(40), {"'b'", "not aligned"});
}

}  // namespace
}  // namespace kwaai::engine
