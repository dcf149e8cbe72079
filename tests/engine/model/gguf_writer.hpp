// A minimal GGUF v3 writer for tests, written from the format description (not from llama.cpp
// code): metadata of every value type, tensors with explicit ggml types, configurable alignment.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace kwaai::engine::test {

class GgufWriter {
 public:
  enum : std::uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };

  template <typename T>
  static std::string raw(T v) {
    std::string s(sizeof(T), '\0');
    std::memcpy(s.data(), &v, sizeof(T));
    return s;
  }
  static std::string str(const std::string& s) { return raw<std::uint64_t>(s.size()) + s; }

  // Adds a key with an already-encoded value.
  void kv_raw(const std::string& key, std::uint32_t type, const std::string& value) {
    kv_ += str(key) + raw(type) + value;
    ++n_kv_;
  }
  void kv_u32(const std::string& k, std::uint32_t v) { kv_raw(k, U32, raw(v)); }
  void kv_i32(const std::string& k, std::int32_t v) { kv_raw(k, I32, raw(v)); }
  void kv_u64(const std::string& k, std::uint64_t v) { kv_raw(k, U64, raw(v)); }
  void kv_f32(const std::string& k, float v) { kv_raw(k, F32, raw(v)); }
  void kv_bool(const std::string& k, bool v) { kv_raw(k, BOOL, raw<std::uint8_t>(v ? 1 : 0)); }
  void kv_str(const std::string& k, const std::string& v) { kv_raw(k, STRING, str(v)); }
  void kv_str_array(const std::string& k, const std::vector<std::string>& v) {
    std::string body = raw<std::uint32_t>(STRING) + raw<std::uint64_t>(v.size());
    for (const auto& s : v) body += str(s);
    kv_raw(k, ARRAY, body);
  }
  void kv_i32_array(const std::string& k, const std::vector<std::int32_t>& v) {
    std::string body = raw<std::uint32_t>(I32) + raw<std::uint64_t>(v.size());
    for (auto x : v) body += raw(x);
    kv_raw(k, ARRAY, body);
  }

  // ne: GGUF order (fastest dimension first). Bytes are placed at the next aligned offset.
  void tensor(const std::string& name, std::uint32_t ggml_type, std::vector<std::uint64_t> ne,
              const std::string& bytes) {
    tensors_.push_back({name, ggml_type, std::move(ne), bytes});
  }

  std::string finish(std::uint64_t alignment = 32) const {
    std::string out = "GGUF" + raw<std::uint32_t>(version) + raw<std::uint64_t>(tensors_.size()) +
                      raw<std::uint64_t>(n_kv_) + kv_;
    std::string data;
    std::string infos;
    for (const auto& t : tensors_) {
      while (data.size() % alignment != 0) data.push_back('\0');
      infos += str(t.name) + raw<std::uint32_t>(t.ne.size());
      for (auto d : t.ne) infos += raw(d);
      infos += raw(t.type) + raw<std::uint64_t>(data.size());
      data += t.bytes;
    }
    out += infos;
    while (out.size() % alignment != 0) out.push_back('\0');
    return out + data;
  }

  std::uint32_t version = 3;

 private:
  struct T {
    std::string name;
    std::uint32_t type;
    std::vector<std::uint64_t> ne;
    std::string bytes;
  };
  std::string kv_;
  std::uint64_t n_kv_ = 0;
  std::vector<T> tensors_;
};

}  // namespace kwaai::engine::test
