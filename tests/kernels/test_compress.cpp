// hivemind BLOCKWISE_8BIT quantize/dequantize (against bytes produced by the real
// bitsandbytes 0.45.2 CPU kernel, and against the reference on random data) and top-k.
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/kernels/op_test_util.hpp"
#include "tests/kernels/reference.hpp"

namespace kwaai::test {
namespace {

using engine::DType;

std::vector<std::uint8_t> from_hex(const std::string& h) {
  std::vector<std::uint8_t> out(h.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return out;
}

template <class T>
std::vector<T> le_values(const std::vector<std::uint8_t>& bytes) {
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

// The serialized runtime.proto Tensor starts with field 1 (buffer): tag 0x0a, varint length.
std::vector<std::uint8_t> tensor_buffer(const std::vector<std::uint8_t>& msg) {
  EXPECT_EQ(msg.at(0), 0x0a);
  std::size_t pos = 1, len = 0;
  for (int shift = 0;; shift += 7) {
    const std::uint8_t b = msg.at(pos++);
    len |= static_cast<std::size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return {msg.begin() + static_cast<std::ptrdiff_t>(pos),
          msg.begin() + static_cast<std::ptrdiff_t>(pos + len)};
}

class CompressTest : public OpTest {};

TEST_P(CompressTest, blockwise8_reproduces_bitsandbytes_indices_from_hivemind_vectors) {
  std::ifstream f(std::string(KWAAI_SHARED_DIR) + "/vectors/hivemind/tensors.json");
  ASSERT_TRUE(f) << "missing " << KWAAI_SHARED_DIR << "/vectors/hivemind/tensors.json";
  const auto doc = nlohmann::json::parse(f);
  int cases = 0;
  for (const auto& e : doc.at("entries")) {
    if (e.at("input").at("compression") != "BLOCKWISE_8BIT") continue;
    SCOPED_TRACE(e.at("name").get<std::string>());
    ++cases;
    const auto& in = e.at("input");
    const auto& lay = e.at("buffer_layout");
    std::int64_t n = 1;
    for (auto d : in.at("shape")) n *= d.get<std::int64_t>();
    // Input: x[i] = float32(sin(0.37 i + 0.1) * (1 + i mod 7) * 0.5); bf16 inputs are that
    // value rounded to bf16 and upcast (the real bytes are checked when present).
    std::vector<float> x(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i)
      x[static_cast<std::size_t>(i)] =
          static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 0.1) * (1 + i % 7) * 0.5);
    if (in.at("dtype") == "bfloat16") {
      const auto raw = le_values<std::uint16_t>(from_hex(in.at("raw_le_hex")));
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = engine::bf16_to_f32(raw[i]);
    } else if (in.contains("raw_le_hex")) {
      ASSERT_EQ(le_values<float>(from_hex(in.at("raw_le_hex"))), x);
    }
    const auto codebook = le_values<float>(from_hex(lay.at("codebook_hex")));
    const auto want_absmax = le_values<float>(from_hex(lay.at("absmax_hex")));
    const auto buffer = tensor_buffer(from_hex(e.at("bytes_hex")));
    const auto range = lay.at("uint8_data");
    const std::vector<std::uint8_t> want_codes(buffer.begin() + range[0].get<std::ptrdiff_t>(),
                                               buffer.begin() + range[1].get<std::ptrdiff_t>());
    ASSERT_EQ(want_codes.size(), static_cast<std::size_t>(n));

    const std::int64_t blocks = static_cast<std::int64_t>(want_absmax.size());
    const auto absmax = poisoned(be(), DType::F32, {blocks});
    const auto codes = poisoned(be(), DType::U8, {n});
    const auto cb = upload(be(), DType::F32, {256}, codebook);
    be().blockwise8_quantize(upload(be(), DType::F32, {n}, x), cb, absmax, codes);
    EXPECT_EQ(download<float>(be(), absmax), want_absmax);
    const auto got = download<std::uint8_t>(be(), codes);
    std::size_t diff = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      if (got[i] != want_codes[i] && diff++ < 5)
        ADD_FAILURE() << "code[" << i << "] = " << int(got[i]) << ", bitsandbytes "
                      << int(want_codes[i]);
    EXPECT_EQ(diff, 0u);

    // Dequantize the real codes: value = float32(codebook[idx] * absmax[block]).
    const auto out = poisoned(be(), DType::F32, {n});
    be().blockwise8_dequantize(upload(be(), DType::U8, {n}, want_codes),
                               upload(be(), DType::F32, {blocks}, want_absmax), cb, out);
    std::vector<double> want(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < want.size(); ++i)
      want[i] = codebook[want_codes[i]] * want_absmax[i / 4096];
    EXPECT_TRUE(all_close(download<float>(be(), out), want, 0, 0));
  }
  EXPECT_EQ(cases, 3);
}

TEST_P(CompressTest, blockwise8_random_blocks_match_reference_including_zero_block) {
  KWAAI_SEEDED_RNG();
  std::vector<float> code(256);
  for (std::size_t i = 0; i < 256; ++i) code[i] = -1.0f + 2.0f * static_cast<float>(i) / 255.0f;
  for (std::int64_t n : {1, 7, 4096, 4097, 3 * 4096 + 33}) {
    SCOPED_TRACE("n " + std::to_string(n));
    auto x = rng.vec(n, -5, 5);
    if (n > 4096)
      for (std::int64_t i = 0; i < 4096; ++i)
        x[static_cast<std::size_t>(i)] = 0.0f;  // absmax 0 block
    std::vector<float> want_absmax;
    std::vector<std::uint8_t> want_codes;
    ref::blockwise8_quantize(x, code, want_absmax, want_codes);
    const auto blocks = static_cast<std::int64_t>(want_absmax.size());
    const auto absmax = poisoned(be(), DType::F32, {blocks});
    const auto codes = poisoned(be(), DType::U8, {n});
    be().blockwise8_quantize(upload(be(), DType::F32, {n}, x),
                             upload(be(), DType::F32, {256}, code), absmax, codes);
    EXPECT_EQ(download<float>(be(), absmax), want_absmax);
    EXPECT_EQ(download<std::uint8_t>(be(), codes), want_codes);
  }
}

TEST_P(CompressTest, topk_by_magnitude_descending_ties_to_lower_index) {
  KWAAI_SEEDED_RNG();
  struct Case {
    std::int64_t rows, cols, k;
  };
  for (const Case& c :
       {Case{1, 1, 1}, Case{3, 7, 3}, Case{2, 33, 33}, Case{4, 4097, 64}, Case{1, 14336, 1000}}) {
    SCOPED_TRACE("rows " + std::to_string(c.rows) + " cols " + std::to_string(c.cols) + " k " +
                 std::to_string(c.k));
    auto x = rng.vec(c.rows * c.cols);
    if (c.cols >= 7) {  // ties in magnitude with different signs
      x[2] = 2.0f;
      x[5] = -2.0f;
    }
    std::vector<std::int32_t> want_idx;
    std::vector<float> want_val;
    ref::topk(x, c.rows, c.cols, c.k, want_idx, want_val);
    const auto idx = poisoned(be(), DType::I32, {c.rows, c.k});
    const auto val = poisoned(be(), DType::F32, {c.rows, c.k});
    be().topk(upload(be(), DType::F32, {c.rows, c.cols}, x), c.k, idx, val);
    EXPECT_EQ(download<std::int32_t>(be(), idx), want_idx);
    EXPECT_EQ(download<float>(be(), val), want_val);
  }
}

TEST_P(CompressTest, rejects_bad_shapes) {
  auto& b = be();
  const auto x = b.alloc(DType::F32, {5000});
  EXPECT_TRUE(throws_invalid("blockwise8_quantize", [&] {
    b.blockwise8_quantize(x, b.alloc(DType::F32, {255}), b.alloc(DType::F32, {2}),
                          b.alloc(DType::U8, {5000}));
  }));
  EXPECT_TRUE(throws_invalid("blockwise8_quantize", [&] {
    b.blockwise8_quantize(x, b.alloc(DType::F32, {256}), b.alloc(DType::F32, {1}),
                          b.alloc(DType::U8, {5000}));
  }));
  EXPECT_TRUE(throws_invalid("blockwise8_dequantize", [&] {
    b.blockwise8_dequantize(b.alloc(DType::U8, {5000}), b.alloc(DType::F32, {2}),
                            b.alloc(DType::F32, {256}), b.alloc(DType::F32, {4999}));
  }));
  EXPECT_TRUE(throws_invalid("topk", [&] {
    b.topk(b.alloc(DType::F32, {2, 8}), 9, b.alloc(DType::I32, {2, 9}),
           b.alloc(DType::F32, {2, 9}));
  }));
  EXPECT_TRUE(throws_invalid("topk", [&] {
    b.topk(b.alloc(DType::F32, {2, 8}), 3, b.alloc(DType::I32, {2, 3}),
           b.alloc(DType::F32, {2, 4}));
  }));
}

KWAAI_INSTANTIATE_OPS(CompressTest);

}  // namespace
}  // namespace kwaai::test
