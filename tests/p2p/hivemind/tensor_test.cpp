// Tensor serialization against tensors.json: every entry decodes to hivemind's bytes; encoders
// reproduce hivemind's bytes where hivemind's encoder is deterministic; streaming split/combine.
#include <openssl/sha.h>

#include <cmath>
#include <random>

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/hivemind/tensor.hpp"
#include "vectors.hpp"

namespace kwaai::p2p::hivemind {
namespace {

using testing::hex;
using testing::json;

std::string sha256_hex(const std::string& s) {
  std::uint8_t d[32];
  SHA256(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), d);
  return to_hex(ByteView(d, 32));
}

// x[i] = float32(sin(0.37 i + 0.1) * (1 + i mod 7) * 0.5), the vectors' input formula.
std::vector<float> formula(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 0.1) *
                              static_cast<double>(1 + i % 7) * 0.5);
  return v;
}

// The exact input tensor of a vector entry.
HostTensor input_of(const json& in) {
  HostTensor t;
  t.dtype = *parse_dtype(in["dtype"].get<std::string>());
  for (const auto& d : in["shape"]) t.shape.push_back(d.get<std::int64_t>());
  t.requires_grad = in["requires_grad"].get<bool>();
  if (in.contains("raw_le_hex")) {
    t.data = hex(in["raw_le_hex"]);
  } else {
    auto f = formula(t.numel());
    t.data.resize(f.size() * 4);
    std::memcpy(t.data.data(), f.data(), t.data.size());
  }
  return t;
}

std::string entry_name(const json& e) {
  return e["name"].get<std::string>();
}

TEST(HivemindTensor, EveryVectorEntryDecodesToHivemindsResult) {
  const json v = testing::load_vectors("tensors.json");
  int decoded = 0;
  for (const auto& e : v["entries"]) {
    SCOPED_TRACE(entry_name(e));
    if (!e["accepted"].get<bool>()) continue;
    auto msg = parse_message<pb::Tensor>(hex(e["bytes_hex"]), 64u << 20);
    ASSERT_TRUE(msg.ok());
    EXPECT_EQ(to_hex(serialize_message(*msg)), e["bytes_hex"].get<std::string>());
    auto t = deserialize_tensor(*msg);
    ASSERT_TRUE(t.ok()) << t.error().what();
    const json& d = e["deserialized"];
    EXPECT_EQ(std::string(dtype_name(t->dtype)), d["dtype"].get<std::string>());
    EXPECT_EQ(t->shape, d["shape"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(t->requires_grad, d["requires_grad"].get<bool>());
    if (d.contains("raw_le_hex") && t->numel() <= 1000) {
      EXPECT_EQ(to_hex(t->data), d["raw_le_hex"].get<std::string>());
    } else {
      // Large results: the vectors keep a prefix of the bytes.
      const std::string prefix = d["raw_le_hex"].get<std::string>();
      EXPECT_EQ(to_hex(t->data).substr(0, prefix.size()), prefix);
    }
    ++decoded;
  }
  EXPECT_GE(decoded, 30);
}

TEST(HivemindTensor, DeterministicEncodersReproduceHivemindBytes) {
  const json v = testing::load_vectors("tensors.json");
  int exact = 0;
  for (const auto& e : v["entries"]) {
    SCOPED_TRACE(entry_name(e));
    const json& in = e["input"];
    const std::string comp = in["compression"].get<std::string>();
    HostTensor t = input_of(in);
    SerializeOptions opt;
    opt.legacy_bfloat16 = in.value("USE_LEGACY_BFLOAT16", true);
    auto out =
        serialize_tensor(t, static_cast<CompressionType>(in["compression_number"].get<int>()), opt);
    if (!e["accepted"].get<bool>()) {
      ASSERT_FALSE(out.ok());
      EXPECT_EQ(out.error().code, Errc::unsupported);
      continue;
    }
    ASSERT_TRUE(out.ok()) << out.error().what();
    // Byte-exact for every encoder on float32/float16/float64 input (the codec code reproduces
    // torch's reduction order and numpy's quantiles). UNIFORM_8BIT on bfloat16 input does its
    // mean/norm in bf16 arithmetic, which we do not reproduce: checked by what a hivemind peer
    // decodes instead.
    const bool bf16_arith = comp == "UNIFORM_8BIT" && t.dtype == DType::bfloat16;
    if (!bf16_arith) {
      EXPECT_EQ(sha256_hex(out->buffer()), e["fields"]["buffer_sha256"].get<std::string>()) << comp;
      EXPECT_EQ(to_hex(serialize_message(*out)).substr(0, 4000),
                e["bytes_hex"].get<std::string>().substr(0, 4000));
      ++exact;
    } else {
      auto ours = deserialize_tensor(*out);
      auto theirs = deserialize_tensor(*parse_message<pb::Tensor>(hex(e["bytes_hex"]), 64u << 20));
      ASSERT_TRUE(ours.ok() && theirs.ok());
      auto a = ours->to_floats(), b = theirs->to_floats(), x = t.to_floats();
      ASSERT_EQ(a.size(), b.size());
      double err_ours = 0, err_theirs = 0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        err_ours = std::max<double>(err_ours, std::fabs(a[i] - x[i]));
        err_theirs = std::max<double>(err_theirs, std::fabs(b[i] - x[i]));
      }
      EXPECT_LE(err_ours, err_theirs * 1.05 + 1e-6) << comp;  // as accurate as hivemind's own
    }
  }
  EXPECT_GE(exact, 32);
}

TEST(HivemindTensor, BlockwiseCodebookIsTheOneHivemindSends) {
  const json v = testing::load_vectors("tensors.json");
  for (const auto& e : v["entries"]) {
    if (e["input"]["compression"] != "BLOCKWISE_8BIT") continue;
    const std::string code_hex = e["buffer_layout"]["codebook_hex"].get<std::string>();
    Bytes ours;
    for (float c : blockwise_codebook()) {
      auto* p = reinterpret_cast<const std::uint8_t*>(&c);
      ours.insert(ours.end(), p, p + 4);
    }
    EXPECT_EQ(to_hex(ours), code_hex);
    EXPECT_EQ(blockwise_codebook()[0], -1.0f);
  }
}

TEST(HivemindTensor, LegacyBfloat16DecodeCase) {
  const json v = testing::load_vectors("tensors.json");
  for (const auto& c : v["decode_cases"]) {
    auto msg = parse_message<pb::Tensor>(hex(c["bytes_hex"]));
    ASSERT_TRUE(msg.ok());
    auto t = deserialize_tensor(*msg);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->dtype, DType::bfloat16);
    auto f = t->to_floats();
    std::vector<float> want;
    for (const auto& x : c["deserialized"]["values"]) want.push_back(x.get<float>());
    EXPECT_EQ(f, want);
  }
}

TEST(HivemindTensor, LossyEncodersStayWithinTheirErrorBounds) {
  // UNIFORM/QUANTILE (and MEANSTD on large rows) are not reproduced bit for bit in general (they
  // depend on torch's reduction order); what must hold is that hivemind decodes them close to
  // the input. Decoding uses the same code that matches hivemind's decoder byte for byte.
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(5000);
  for (auto& f : x) f = g(rng) * 3.0f + 0.5f;
  HostTensor t = HostTensor::from_floats({50, 100}, x);
  struct Bound {
    CompressionType c;
    double max_rel_l2;
  } bounds[] = {{pb::FLOAT16, 1e-3},
                {pb::MEANSTD_16BIT, 1e-3},
                {pb::UNIFORM_8BIT, 0.05},
                {pb::QUANTILE_8BIT, 0.05},
                {pb::BLOCKWISE_8BIT, 0.05}};
  for (const auto& b : bounds) {
    SCOPED_TRACE(b.c);
    auto enc = serialize_tensor(t, b.c);
    ASSERT_TRUE(enc.ok());
    auto dec = deserialize_tensor(*enc);
    ASSERT_TRUE(dec.ok());
    auto y = dec->to_floats();
    double num = 0, den = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      num += (x[i] - y[i]) * (x[i] - y[i]), den += x[i] * x[i];
    EXPECT_LT(std::sqrt(num / den), b.max_rel_l2);
  }
}

TEST(HivemindTensor, StreamingSplitMatchesHivemindParts) {
  const json s = testing::load_vectors("tensors.json")["streaming"];
  for (const auto& c : s["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    pb::Tensor whole;
    std::size_t chunk = 0;
    if (c.contains("serialized_hex")) {
      whole = *parse_message<pb::Tensor>(hex(c["serialized_hex"]));
      chunk = c["input"]["chunk_size_bytes"].get<std::size_t>();
    } else if (c["input"].is_object() && c["input"].contains("chunk_size_bytes")) {
      // 5 MiB: formula(4096) repeated
      auto base = formula(4096);
      std::vector<float> f(1280 * 1024);
      for (std::size_t i = 0; i < f.size(); ++i) f[i] = base[i % base.size()];
      whole = *serialize_tensor(HostTensor::from_floats({1, 1280, 1024}, f), pb::NONE);
      chunk = c["input"]["chunk_size_bytes"].get<std::size_t>();
      EXPECT_EQ(serialize_message(whole).size(), c["serialized_length"].get<std::size_t>());
    } else {
      whole = *serialize_tensor(HostTensor::from_floats({0}, {}), pb::NONE);
      chunk = 4096;
    }
    auto parts = split_for_streaming(whole, chunk);
    ASSERT_EQ(parts.size(), c["parts"].size());
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const json& p = c["parts"][i];
      if (p.contains("bytes_hex")) {
        EXPECT_EQ(to_hex(serialize_message(parts[i])), p["bytes_hex"].get<std::string>());
      } else {
        EXPECT_EQ(sha256_hex(parts[i].buffer()), p["buffer_sha256"].get<std::string>());
        EXPECT_EQ(serialize_message(parts[i]).size(), p["serialized_length"].get<std::size_t>());
      }
    }
    auto grouped = group_streamed_parts(parts);
    ASSERT_TRUE(grouped.ok());
    ASSERT_EQ(grouped->size(), 1u);
    EXPECT_EQ((*grouped)[0].buffer(), whole.buffer());
    EXPECT_EQ((*grouped)[0].dtype(), whole.dtype());
  }
}

TEST(HivemindTensor, HostileTensorsAreRejectedCleanly) {
  pb::Tensor t;
  t.set_dtype("float32");
  t.add_size(4);
  t.set_buffer(std::string(15, '\0'));  // one byte short
  EXPECT_EQ(deserialize_tensor(t).error().code, Errc::malformed);
  t.set_dtype("complex64");
  EXPECT_EQ(deserialize_tensor(t).error().code, Errc::unsupported);
  t.set_dtype("float32");
  t.clear_size();
  for (int i = 0; i < 4; ++i) t.add_size(0xffffffffu);  // 2^128 elements
  EXPECT_EQ(deserialize_tensor(t).error().code, Errc::too_large);
  t.clear_size();
  t.add_size(3);
  for (auto c :
       {pb::MEANSTD_16BIT, pb::QUANTILE_8BIT, pb::UNIFORM_8BIT, pb::BLOCKWISE_8BIT, pb::FLOAT16}) {
    t.set_compression(c);
    t.set_buffer(std::string(5, '\x7f'));
    EXPECT_FALSE(deserialize_tensor(t).ok()) << c;
  }
  // Codebook index beyond a short codebook.
  Bytes buf;
  append_le64(buf, 2);
  for (int i = 0; i < 8; ++i) buf.push_back(0);
  buf.insert(buf.end(), {0, 1, 9});
  t.set_compression(pb::UNIFORM_8BIT);
  t.set_buffer(to_string(buf));
  EXPECT_EQ(deserialize_tensor(t).error().code, Errc::malformed);
}

TEST(HivemindTensor, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(float_to_half(65504.0), 0x7bff);
  EXPECT_EQ(float_to_half(65519.99), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0), 0x7c00);
  EXPECT_EQ(float_to_half(std::ldexp(1.0, -24)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(1.0, -25)), 0x0000);  // tie to even (zero)
  EXPECT_EQ(float_to_half(std::ldexp(3.0, -26)), 0x0001);
  EXPECT_EQ(float_to_half(-2.0), 0xc000);
  EXPECT_EQ(float_to_half(1.0 + std::ldexp(1.0, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(float_to_half(1.0 + 3 * std::ldexp(1.0, -11)), 0x3c02);
  for (std::uint32_t h = 0; h < 0x7c00; ++h)
    ASSERT_EQ(float_to_half(half_to_float(static_cast<std::uint16_t>(h))), h);
  EXPECT_EQ(float_to_bfloat16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bfloat16(bfloat16_to_float(0x4049)), 0x4049);
}

}  // namespace
}  // namespace kwaai::p2p::hivemind
