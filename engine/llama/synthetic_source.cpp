#include "engine/llama/synthetic_source.hpp"

#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "engine/core/formats.hpp"
#include "engine/core/kquants.hpp"
#include "engine/llama/llama_config.hpp"

namespace kwaai::engine::llama {

namespace {

// splitmix64: fast, and good enough to fill weights with noise.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

void fill_random(std::vector<std::byte>& out, Rng& rng) {
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    const std::uint64_t v = rng.next();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < out.size(); ++i) out[i] = static_cast<std::byte>(rng.next());
}

Shape shape_of(const ModelConfig& c, const std::string& name) {
  // The model's ends, so whole-model runs (embedding lookup, final norm, LM head) time what a
  // real file of this shape costs; a config with tied embeddings has no separate head.
  if (name == kEmbedName) return {c.vocab, c.hidden};
  if (name == kFinalNormName) return {c.hidden};
  if (name == kLmHeadName && !c.tied_embeddings) return {c.vocab, c.hidden};
  const std::string pre = "model.layers.";
  if (name.rfind(pre, 0) != 0) throw std::out_of_range("synthetic model has no tensor " + name);
  std::size_t dot = name.find('.', pre.size());
  if (dot == std::string::npos) throw std::out_of_range("synthetic model has no tensor " + name);
  const std::int64_t layer = std::stoll(name.substr(pre.size(), dot - pre.size()));
  if (layer < 0 || layer >= c.layers)
    throw std::out_of_range("synthetic model has no tensor " + name);
  const std::string t = name.substr(dot + 1);
  if (t == "input_layernorm.weight" || t == "post_attention_layernorm.weight") return {c.hidden};
  if (t == "self_attn.q_proj.weight") return {q_dim(c), c.hidden};
  if (t == "self_attn.k_proj.weight" || t == "self_attn.v_proj.weight")
    return {kv_dim(c), c.hidden};
  if (t == "self_attn.o_proj.weight") return {c.hidden, q_dim(c)};
  if (t == "mlp.gate_proj.weight" || t == "mlp.up_proj.weight") return {c.intermediate, c.hidden};
  if (t == "mlp.down_proj.weight") return {c.hidden, c.intermediate};
  throw std::out_of_range("synthetic model has no tensor " + name);
}

}  // namespace

SyntheticSource::SyntheticSource(ModelConfig cfg, DType matrix_dtype, std::uint64_t seed)
    : cfg_(std::move(cfg)), dtype_(matrix_dtype), seed_(seed), path_("synthetic") {
  validate_llama(cfg_);
  if (dtype_ != DType::F32 && dtype_ != DType::F16 && dtype_ != DType::Q8_0 &&
      dtype_ != DType::Q4_0 && dtype_ != DType::Q4_K && dtype_ != DType::Q5_K &&
      dtype_ != DType::Q6_K)
    throw std::invalid_argument(
        "SyntheticSource: matrix dtype must be f32, f16, q8_0, q4_0, q4_k, q5_k or q6_k");
}

std::vector<std::string> SyntheticSource::names() const {
  std::vector<std::string> out;
  for (std::int64_t i = 0; i < cfg_.layers; ++i)
    for (auto w :
         {BlockTensor::InputNorm, BlockTensor::Q, BlockTensor::K, BlockTensor::V, BlockTensor::O,
          BlockTensor::PostNorm, BlockTensor::Gate, BlockTensor::Up, BlockTensor::Down})
      out.push_back(block_tensor_name(i, w));
  out.push_back(kEmbedName);
  out.push_back(kFinalNormName);
  if (!cfg_.tied_embeddings) out.push_back(kLmHeadName);
  return out;
}

bool SyntheticSource::has(const std::string& name) const {
  try {
    shape_of(cfg_, name);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

TensorInfo SyntheticSource::info(const std::string& name) const {
  Shape s = shape_of(cfg_, name);
  return {dtype_for(s), s};
}

DType SyntheticSource::dtype_for(const Shape& s) const {
  if (s.size() == 1) return DType::F32;
  // A row that is not a whole number of 32-value blocks cannot be block-quantized (stories260K's
  // down_proj, K = 172): such a matrix is f16, as upload_matrix would leave it unquantized.
  if (s.back() % format_info(dtype_).block_elems != 0) return DType::F16;
  return dtype_;
}

HostTensor SyntheticSource::load(const std::string& name) const {
  HostTensor t;
  t.name = name;
  t.shape = shape_of(cfg_, name);
  Rng rng{seed_ ^ std::hash<std::string>{}(name)};
  const std::int64_t n = shape_numel(t.shape);
  if (t.shape.size() == 1) {  // norm weights around 1
    t.dtype = DType::F32;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v)
      x = 1.0f + static_cast<float>(static_cast<std::int64_t>(rng.next() % 201) - 100) * 1e-3f;
    t.data.resize(v.size() * sizeof(float));
    std::memcpy(t.data.data(), v.data(), t.data.size());
  } else {
    t.dtype = dtype_for(t.shape);
    t.data.resize(dtype_bytes(t.dtype, n));
    fill_random(t.data, rng);
    // Random bytes are fine for int8 / 4-bit codes; scales and float values are set explicitly.
    if (t.dtype == DType::Q4_K || t.dtype == DType::Q5_K) {
      // Random codes q (mean 7.5 and std 4.6 for 4 bits, 15.5 and 9.2 for 5) against sub-block
      // scales 8 and minimums 30 / 62 with dmin = 2 d, so values are 8 d (q - mean): zero mean,
      // std ~0.02.
      const bool five = t.dtype == DType::Q5_K;
      int sc[8], m[8];
      for (int j = 0; j < 8; ++j) {
        sc[j] = 8;
        m[j] = five ? 62 : 30;
      }
      std::uint8_t packed[12];
      k_pack_scale_min(sc, m, packed);
      const std::uint16_t d = f32_to_f16(0.02f / (8.0f * (five ? 9.2f : 4.6f)));
      const std::uint16_t dmin = f32_to_f16(2.0f * f16_to_f32(d));
      const std::size_t block = format_info(t.dtype).block_bytes;
      for (std::size_t off = 0; off < t.data.size(); off += block) {
        std::memcpy(&t.data[off], &d, 2);
        std::memcpy(&t.data[off + 2], &dmin, 2);
        std::memcpy(&t.data[off + 4], packed, 12);
      }
    } else if (t.dtype == DType::Q6_K) {
      // Random 6-bit codes (std 18.5 around 32) against int8 scales 16.
      const std::uint16_t d = f32_to_f16(0.02f / (16.0f * 18.5f));
      for (std::size_t off = 0; off < t.data.size(); off += sizeof(BlockQ6_K)) {
        std::memset(&t.data[off + 192], 16, 16);
        std::memcpy(&t.data[off + 208], &d, 2);
      }
    } else if (is_quantized(t.dtype)) {
      const std::size_t block = format_info(t.dtype).block_bytes;
      // Uniform int8 codes have std ~74, 4-bit codes (q - 8) ~4.6: scale both to std ~0.02.
      const std::uint16_t d = f32_to_f16(t.dtype == DType::Q8_0 ? 0.02f / 74.0f : 0.02f / 4.6f);
      for (std::size_t off = 0; off < t.data.size(); off += block) std::memcpy(&t.data[off], &d, 2);
    } else {
      // 256 normal-ish values (Irwin-Hall of 4 uniforms) indexed by random bytes.
      float table[256];
      Rng trng{seed_};
      for (float& x : table) {
        double s = 0;
        for (int k = 0; k < 4; ++k) s += static_cast<double>(trng.next() >> 11) * 0x1.0p-53;
        x = static_cast<float>((s - 2.0) * std::sqrt(3.0) * 0.02);
      }
      if (t.dtype == DType::F16) {
        std::uint16_t h[256];
        for (int k = 0; k < 256; ++k) h[k] = f32_to_f16(table[k]);
        auto* p = reinterpret_cast<std::uint16_t*>(t.data.data());
        for (std::int64_t i = 0; i < n; ++i) p[i] = h[static_cast<std::uint8_t>(t.data[2 * i])];
      } else {
        auto* p = reinterpret_cast<float*>(t.data.data());
        for (std::int64_t i = 0; i < n; ++i) p[i] = table[static_cast<std::uint8_t>(t.data[4 * i])];
      }
    }
  }
  bytes_read_ += t.data.size();
  return t;
}

}  // namespace kwaai::engine::llama
