// BLOCKWISE_8BIT through the device kernels: the message built on a device must be byte-equal to
// p2p's host serializer and to real hivemind's bytes (shared/vectors/hivemind/tensors.json), and
// decoding hivemind's bytes on the device must give hivemind's values exactly.
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/glue/tensor_bridge.hpp"
#include "engine/core/dtype.hpp"
#include "p2p/hivemind/bytes.hpp"
#include "p2p/hivemind/tensor.hpp"

namespace kwaai::glue {
namespace {

namespace hm = p2p::hivemind;
using engine::DType;
using nlohmann::json;

std::vector<std::string> backend_specs() {
#ifdef KWAAI_TEST_VULKAN
  return {"cpu", "vulkan"};
#else
  return {"cpu"};
#endif
}

// One backend per spec for the whole binary (creating a Vulkan device per case is slow).
engine::Backend& backend_for(const std::string& spec) {
  // A Vulkan backend logs (spdlog) if saving its pipeline cache fails while it is destroyed at
  // exit, so spdlog's registry must outlive this cache: touching it first constructs it
  // first, and function statics are destroyed in reverse order of construction.
  static const bool log_first = (spdlog::default_logger_raw(), true);
  (void)log_first;
  static std::map<std::string, std::unique_ptr<engine::Backend>> cache;
  auto& b = cache[spec];
  if (!b) b = engine::make_backend(spec);
  return *b;
}

const json& vectors() {
  static const json doc = [] {
    std::ifstream f(std::string(KWAAI_SHARED_DIR) + "/vectors/hivemind/tensors.json");
    if (!f) throw std::runtime_error("missing shared/vectors/hivemind/tensors.json");
    return json::parse(f);
  }();
  return doc;
}

std::vector<json> blockwise_entries() {
  std::vector<json> out;
  for (const auto& e : vectors().at("entries"))
    if (e.at("input").at("compression") == "BLOCKWISE_8BIT") out.push_back(e);
  return out;
}

hm::Bytes unhex(const std::string& h) {
  auto r = hm::from_hex(h);
  if (!r) throw std::runtime_error("bad hex in vectors: " + r.error().message);
  return *r;
}

std::string as_string(const hm::Bytes& b) {
  return std::string(b.begin(), b.end());
}

// The entry's input as a host tensor: the documented formula for float32 (checked against the
// raw bytes when the vector carries them), the vector's raw bytes for bfloat16.
hm::HostTensor entry_input(const json& e) {
  const json& in = e.at("input");
  hm::HostTensor t;
  t.shape = in.at("shape").get<std::vector<std::int64_t>>();
  t.requires_grad = in.at("requires_grad").get<bool>();
  const auto dtype = hm::parse_dtype(in.at("dtype").get<std::string>());
  if (!dtype) throw std::runtime_error("unknown dtype in vector");
  t.dtype = *dtype;
  if (t.dtype == hm::DType::float32) {
    std::vector<float> x(t.numel());
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 0.1) *
                                static_cast<double>(1 + i % 7) * 0.5);
    t = hm::HostTensor::from_floats(t.shape, x);
    t.requires_grad = in.at("requires_grad").get<bool>();
    if (in.contains("raw_le_hex")) {
      EXPECT_EQ(t.data, unhex(in.at("raw_le_hex")));
    }
  } else {
    t.data = unhex(in.at("raw_le_hex"));
  }
  return t;
}

engine::Tensor to_device(engine::Backend& be, const std::vector<float>& v,
                         const engine::Shape& shape) {
  engine::Tensor t = be.alloc(DType::F32, shape);
  be.upload(t, std::as_bytes(std::span<const float>(v)));
  return t;
}

std::vector<float> from_device(engine::Backend& be, const engine::Tensor& t) {
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  be.download(t, std::as_writable_bytes(std::span<float>(v)));
  return v;
}

// Bit patterns, so -0.0 vs 0.0 or a NaN would show as a difference.
std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

hm::pb::Tensor vector_message(const json& e) {
  hm::pb::Tensor t;
  if (!t.ParseFromString(as_string(unhex(e.at("bytes_hex")))))
    throw std::runtime_error("vector bytes do not parse as a Tensor");
  return t;
}

// Throws std::exception-derived `E` whose message contains `needle`.
template <class E, class F>
::testing::AssertionResult throws_with(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const E& e) {
    if (std::string(e.what()).find(needle) != std::string::npos)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "message lacks '" << needle << "': " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "wrong exception type: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception (wanted '" << needle << "')";
}

class TensorBridgeTest : public ::testing::TestWithParam<std::string> {
 protected:
  engine::Backend& be() { return backend_for(GetParam()); }
};

TEST_P(TensorBridgeTest, device_serialization_equals_host_serializer_and_hivemind_bytes) {
  Blockwise8Bridge bridge(be());
  int cases = 0;
  for (const json& e : blockwise_entries()) {
    SCOPED_TRACE(e.at("name").get<std::string>());
    ++cases;
    const hm::HostTensor host = entry_input(e);
    const auto want_host = hm::serialize_tensor(host, hm::pb::BLOCKWISE_8BIT);
    ASSERT_TRUE(want_host.ok()) << want_host.error().what();
    const std::string hivemind_bytes = as_string(unhex(e.at("bytes_hex")));
    ASSERT_EQ(want_host->SerializeAsString(), hivemind_bytes);  // p2p's own claim, re-checked

    const engine::Tensor x = to_device(be(), host.to_floats(), host.shape);
    const hm::pb::Tensor got = bridge.serialize(x, hm::dtype_name(host.dtype), host.requires_grad);
    EXPECT_EQ(got.SerializeAsString(), hivemind_bytes);
    // The one-shot form (fresh codebook upload) gives the same message.
    EXPECT_EQ(
        serialize_blockwise8_on_device(be(), x, hm::dtype_name(host.dtype), host.requires_grad)
            .SerializeAsString(),
        hivemind_bytes);
  }
  EXPECT_EQ(cases, 3);  // float32[2,3,5], float32[10000] (3 blocks), bfloat16[2,3,5]
}

TEST_P(TensorBridgeTest, decoding_hivemind_bytes_on_device_gives_hivemind_values_exactly) {
  Blockwise8Bridge bridge(be());
  for (const json& e : blockwise_entries()) {
    SCOPED_TRACE(e.at("name").get<std::string>());
    const json& dec = e.at("deserialized");
    const engine::Tensor out = bridge.deserialize(vector_message(e));
    EXPECT_EQ(out.dtype(), DType::F32);
    EXPECT_EQ(out.shape(), dec.at("shape").get<engine::Shape>());
    const hm::Bytes raw = unhex(dec.at("raw_le_hex"));
    std::vector<float> want;
    if (dec.at("dtype") == "float32") {
      want.resize(raw.size() / 4);
      std::memcpy(want.data(), raw.data(), raw.size());
    } else {
      ASSERT_EQ(dec.at("dtype"), "bfloat16");
      for (std::size_t i = 0; i + 1 < raw.size(); i += 2)
        want.push_back(engine::bf16_to_f32(static_cast<std::uint16_t>(raw[i] | raw[i + 1] << 8)));
    }
    EXPECT_EQ(bits(from_device(be(), out)), bits(want));
  }
}

// A host tensor of `wire` dtype with values from `make(i)` (rounded to the dtype), and the f32
// upcast the device holds.
template <class F>
std::pair<hm::HostTensor, std::vector<float>> make_input(hm::DType wire, std::int64_t n, F&& make) {
  hm::HostTensor host;
  host.dtype = wire;
  host.shape = {n};
  host.requires_grad = true;
  host.data.resize(static_cast<std::size_t>(n) * hm::dtype_size(wire));
  std::vector<float> x(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < x.size(); ++i) {
    float v = make(i);
    if (wire == hm::DType::bfloat16) {
      const std::uint16_t h = hm::float_to_bfloat16(v);
      v = hm::bfloat16_to_float(h);
      std::memcpy(host.data.data() + 2 * i, &h, 2);
    } else if (wire == hm::DType::float16) {
      const std::uint16_t h = hm::float_to_half(v);
      v = hm::half_to_float(h);
      std::memcpy(host.data.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(host.data.data() + 4 * i, &v, 4);
    }
    x[i] = v;
  }
  return {std::move(host), std::move(x)};
}

TEST_P(TensorBridgeTest, random_tensors_match_host_serializer_and_round_trip) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  Blockwise8Bridge bridge(be());
  for (std::int64_t n : {1, 4095, 4096, 4097, 2 * 4096 + 123}) {  // around block edges
    for (const char* dtype : {"float32", "float16", "bfloat16"}) {
      SCOPED_TRACE("n " + std::to_string(n) + " " + dtype);
      const auto [host, x] =
          make_input(*hm::parse_dtype(dtype), n, [&](std::size_t) { return dist(rng); });
      const auto want = hm::serialize_tensor(host, hm::pb::BLOCKWISE_8BIT);
      ASSERT_TRUE(want.ok()) << want.error().what();
      const hm::pb::Tensor got = bridge.serialize(to_device(be(), x, {n}), dtype, true);
      ASSERT_EQ(got.SerializeAsString(), want->SerializeAsString());

      const auto host_dec = hm::deserialize_tensor(got);
      ASSERT_TRUE(host_dec.ok()) << host_dec.error().what();
      EXPECT_EQ(bits(from_device(be(), bridge.deserialize(got))), bits(host_dec->to_floats()));
    }
  }
}

// An all-zero block (absmax 0). The device kernels divide by 1 there (codes of the entry
// nearest 0); p2p's host codec divides 0 by 0 and picks a different index. Both decode to zero,
// so only the indices of that block may differ; everything else must match byte for byte.
TEST_P(TensorBridgeTest, all_zero_block_serializes_absmax_zero_and_decodes_to_zeros) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  Blockwise8Bridge bridge(be());
  const std::int64_t n = 2 * 4096 + 77;
  const auto [host, x] =
      make_input(hm::DType::float32, n, [&](std::size_t i) { return i < 4096 ? 0.0f : dist(rng); });
  const auto want = hm::serialize_tensor(host, hm::pb::BLOCKWISE_8BIT);
  ASSERT_TRUE(want.ok()) << want.error().what();
  const hm::pb::Tensor got = bridge.serialize(to_device(be(), x, {n}), "float32", true);
  const std::size_t codes_at = 16 + 3 * 4 + 256 * 4;
  std::string got_buf = got.buffer(), want_buf = want->buffer();
  ASSERT_EQ(got_buf.size(), want_buf.size());
  EXPECT_EQ(got_buf.substr(16, 4), std::string(4, '\0'));  // absmax[0] == +0.0
  got_buf.replace(codes_at, 4096, 4096, 'z');
  want_buf.replace(codes_at, 4096, 4096, 'z');
  EXPECT_EQ(got_buf, want_buf);

  const std::vector<float> dec = from_device(be(), bridge.deserialize(got));
  const auto host_dec = hm::deserialize_tensor(got);
  ASSERT_TRUE(host_dec.ok()) << host_dec.error().what();
  const std::vector<float> want_dec = host_dec->to_floats();
  for (std::size_t i = 0; i < dec.size(); ++i) {
    ASSERT_EQ(dec[i], want_dec[i]) << "element " << i;  // == : +0 and -0 both count as zero
    if (i < 4096) {
      ASSERT_EQ(dec[i], 0.0f) << "element " << i;
    }
  }
}

TEST_P(TensorBridgeTest, corrupt_or_unsupported_messages_are_clear_errors) {
  Blockwise8Bridge bridge(be());
  const hm::pb::Tensor good = vector_message(blockwise_entries().at(0));  // float32[2,3,5]
  auto with_buffer = [&](std::string b) {
    hm::pb::Tensor t = good;
    t.set_buffer(std::move(b));
    return t;
  };
  auto patched = [&](std::size_t at, const void* v, std::size_t len) {
    std::string b = good.buffer();
    std::memcpy(b.data() + at, v, len);
    return with_buffer(std::move(b));
  };
  using std::invalid_argument;
  auto dec = [&](const hm::pb::Tensor& t) { return [&bridge, t] { bridge.deserialize(t); }; };
  EXPECT_TRUE(throws_with<invalid_argument>(dec(with_buffer("short")), "16-byte header"));
  EXPECT_TRUE(throws_with<invalid_argument>(
      dec(with_buffer(good.buffer().substr(0, good.buffer().size() - 1))), "needs 1074"));
  EXPECT_TRUE(throws_with<invalid_argument>(dec(with_buffer(good.buffer() + "x")), "needs 1074"));
  const std::int64_t c257 = 257, a2 = 2;
  EXPECT_TRUE(throws_with<invalid_argument>(dec(patched(8, &c257, 8)), "C = 257"));
  EXPECT_TRUE(throws_with<invalid_argument>(dec(patched(0, &a2, 8)), "A = 2"));
  const float inf = INFINITY, nan = NAN;
  EXPECT_TRUE(throws_with<invalid_argument>(dec(patched(16, &inf, 4)), "absmax[0]"));
  EXPECT_TRUE(throws_with<invalid_argument>(dec(patched(20 + 4 * 7, &nan, 4)), "codebook[7]"));

  hm::pb::Tensor t = good;
  t.set_compression(hm::pb::NONE);
  EXPECT_TRUE(throws_with<invalid_argument>(dec(t), "not BLOCKWISE_8BIT"));
  t = good;
  t.set_dtype("int64");
  EXPECT_TRUE(throws_with<invalid_argument>(dec(t), "'int64'"));
  t = good;
  t.add_size(0);
  EXPECT_TRUE(throws_with<invalid_argument>(dec(t), "empty tensor"));
  t = good;
  t.clear_size();
  for (int i = 0; i < 3; ++i) t.add_size(1u << 20);  // 2^60 elements
  EXPECT_TRUE(throws_with<std::length_error>(dec(t), "elements"));

  const engine::Tensor ok = to_device(be(), {1.0f, -2.0f}, {2});
  EXPECT_TRUE(
      throws_with<invalid_argument>([&] { bridge.serialize(ok, "int8", false); }, "'int8'"));
  engine::Tensor ids = be().alloc(DType::I32, {2});
  be().upload(ids, std::as_bytes(std::span<const std::int32_t>(std::vector<std::int32_t>{1, 2})));
  EXPECT_TRUE(
      throws_with<invalid_argument>([&] { bridge.serialize(ids, "float32", false); }, "i32"));
  // The bridge is still usable after the errors.
  const hm::pb::Tensor rt = bridge.serialize(ok, "float32", false);
  EXPECT_EQ(from_device(be(), bridge.deserialize(rt)).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Backends, TensorBridgeTest, ::testing::ValuesIn(backend_specs()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace kwaai::glue
