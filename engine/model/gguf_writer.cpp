#include "engine/model/gguf_writer.hpp"

#include <cstring>
#include <stdexcept>

#include "engine/core/formats.hpp"

namespace kwaai::engine {

namespace {

enum : std::uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };

template <typename T>
std::string raw(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}
std::string str(const std::string& s) {
  return raw<std::uint64_t>(s.size()) + s;
}

}  // namespace

GgufWriter::GgufWriter(std::uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw std::invalid_argument("gguf writer: alignment must be a power of two");
  if (alignment != 32) add_u32("general.alignment", static_cast<std::uint32_t>(alignment));
}

void GgufWriter::kv(const std::string& key, std::uint32_t type, const std::string& value) {
  if (out_.is_open()) throw std::logic_error("gguf writer: metadata after begin()");
  kv_ += str(key) + raw(type) + value;
  ++n_kv_;
}

void GgufWriter::add_u32(const std::string& k, std::uint32_t v) {
  kv(k, kU32, raw(v));
}
void GgufWriter::add_i32(const std::string& k, std::int32_t v) {
  kv(k, kI32, raw(v));
}
void GgufWriter::add_f32(const std::string& k, float v) {
  kv(k, kF32, raw(v));
}
void GgufWriter::add_bool(const std::string& k, bool v) {
  kv(k, kBool, raw<std::uint8_t>(v ? 1 : 0));
}
void GgufWriter::add_string(const std::string& k, const std::string& v) {
  kv(k, kString, str(v));
}
void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  std::string body = raw<std::uint32_t>(kString) + raw<std::uint64_t>(v.size());
  for (const auto& s : v) body += str(s);
  kv(k, kArray, body);
}
void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& v) {
  std::string body = raw<std::uint32_t>(kF32) + raw<std::uint64_t>(v.size());
  for (float x : v) body += raw(x);
  kv(k, kArray, body);
}
void GgufWriter::add_i32s(const std::string& k, const std::vector<std::int32_t>& v) {
  std::string body = raw<std::uint32_t>(kI32) + raw<std::uint64_t>(v.size());
  for (auto x : v) body += raw(x);
  kv(k, kArray, body);
}

namespace {

// A value's bytes after its type tag (arrays: element type, count, elements).
std::string value_bytes(const GgufValue& v) {
  switch (v.type) {
    case GgufType::U8:
    case GgufType::BOOL:
      return raw(static_cast<std::uint8_t>(v.u));
    case GgufType::I8:
      return raw(static_cast<std::int8_t>(v.i));
    case GgufType::U16:
      return raw(static_cast<std::uint16_t>(v.u));
    case GgufType::I16:
      return raw(static_cast<std::int16_t>(v.i));
    case GgufType::U32:
      return raw(static_cast<std::uint32_t>(v.u));
    case GgufType::I32:
      return raw(static_cast<std::int32_t>(v.i));
    case GgufType::U64:
      return raw(v.u);
    case GgufType::I64:
      return raw(v.i);
    case GgufType::F32:
      return raw(static_cast<float>(v.f));
    case GgufType::F64:
      return raw(v.f);
    case GgufType::STRING:
      return str(v.s);
    case GgufType::ARRAY: {
      std::string body = raw(static_cast<std::uint32_t>(v.elem_type)) +
                         raw(static_cast<std::uint64_t>(v.items.size()));
      // An element that is itself an array is written as its type, count and items, which is
      // what value_bytes gives for it.
      for (const auto& e : v.items) body += value_bytes(e);
      return body;
    }
  }
  throw std::invalid_argument("gguf writer: unknown value type " +
                              std::to_string(static_cast<std::uint32_t>(v.type)));
}

}  // namespace

void GgufWriter::add_value(const std::string& k, const GgufValue& v) {
  kv(k, static_cast<std::uint32_t>(v.type), value_bytes(v));
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, const Shape& shape) {
  if (out_.is_open()) throw std::logic_error("gguf writer: tensor declared after begin()");
  const FormatInfo& f = format_info(dtype);
  if (f.gguf_type < 0)
    throw std::invalid_argument("gguf writer: " + std::string(f.name) + " has no GGUF type");
  if (shape.empty() || shape.size() > 4)
    throw std::invalid_argument("gguf writer: tensor '" + name + "' needs 1..4 dimensions");
  Info t{name, dtype, shape};
  t.nbytes = dtype_bytes(dtype, shape_numel(shape));  // checks the block multiple
  data_bytes_ = (data_bytes_ + alignment_ - 1) / alignment_ * alignment_;
  t.offset = data_bytes_;
  data_bytes_ += t.nbytes;
  tensors_.push_back(std::move(t));
}

void GgufWriter::pad_to_alignment() {
  const auto pos = static_cast<std::uint64_t>(out_.tellp());
  const std::uint64_t pad = (alignment_ - pos % alignment_) % alignment_;
  static const char zeros[256] = {};
  for (std::uint64_t left = pad; left > 0;) {
    const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, sizeof zeros));
    out_.write(zeros, n);
    left -= static_cast<std::uint64_t>(n);
  }
}

void GgufWriter::begin(const std::string& path) {
  path_ = path;
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_) throw std::runtime_error("gguf writer: cannot create '" + path + "'");
  std::string head = "GGUF" + raw<std::uint32_t>(3) + raw<std::uint64_t>(tensors_.size()) +
                     raw<std::uint64_t>(n_kv_) + kv_;
  for (const auto& t : tensors_) {
    head += str(t.name) + raw<std::uint32_t>(static_cast<std::uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
      head += raw<std::uint64_t>(static_cast<std::uint64_t>(*it));  // ne[]: fastest first
    head += raw<std::uint32_t>(static_cast<std::uint32_t>(format_info(t.dtype).gguf_type));
    head += raw<std::uint64_t>(t.offset);
  }
  out_.write(head.data(), static_cast<std::streamsize>(head.size()));
  pad_to_alignment();
}

void GgufWriter::write_tensor(std::span<const std::byte> bytes) {
  if (!out_.is_open()) throw std::logic_error("gguf writer: write_tensor before begin()");
  if (next_ >= tensors_.size())
    throw std::invalid_argument("gguf writer: more tensors written than declared");
  const Info& t = tensors_[next_];
  if (bytes.size() != t.nbytes)
    throw std::invalid_argument("gguf writer: tensor '" + t.name + "' needs " +
                                std::to_string(t.nbytes) + " bytes, got " +
                                std::to_string(bytes.size()));
  // Pad the data region up to this tensor's offset.
  static const char zeros[64] = {};
  while (written_ < t.offset) {
    const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(t.offset - written_, 64));
    out_.write(zeros, n);
    written_ += static_cast<std::uint64_t>(n);
  }
  out_.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  written_ += bytes.size();
  ++next_;
  if (!out_) throw std::runtime_error("gguf writer: write to '" + path_ + "' failed");
}

void GgufWriter::finish() {
  if (next_ != tensors_.size())
    throw std::logic_error("gguf writer: " + std::to_string(tensors_.size() - next_) +
                           " declared tensors were not written");
  out_.close();
  if (!out_) throw std::runtime_error("gguf writer: closing '" + path_ + "' failed");
}

}  // namespace kwaai::engine
