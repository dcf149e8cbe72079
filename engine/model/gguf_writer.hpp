// GGUF v3 writer (the layout in gguf.hpp), streaming: metadata and tensor infos are declared
// first, then each tensor's bytes are written in declaration order straight to the file, so a
// multi-gigabyte model never sits in memory. Tensor types come from the format table
// (engine/core/formats.hpp), so every format with a GGUF id can be written.
#pragma once

#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "engine/core/tensor.hpp"
#include "engine/model/gguf.hpp"

namespace kwaai::engine {

class GgufWriter {
 public:
  explicit GgufWriter(std::uint64_t alignment = 32);

  void add_u32(const std::string& key, std::uint32_t v);
  void add_i32(const std::string& key, std::int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<std::int32_t>& v);
  // Any value the reader parses (engine/model/gguf.hpp), arrays included: metadata copied from
  // one file to another keeps its types.
  void add_value(const std::string& key, const GgufValue& v);

  // A tensor of `dtype` (which must have a GGUF id) and row-major `shape`; its bytes follow in
  // write_tensor calls, in declaration order.
  void add_tensor(const std::string& name, DType dtype, const Shape& shape);

  // Writes the header, metadata and tensor infos to `path` (truncating it).
  void begin(const std::string& path);
  // The next declared tensor's bytes (exactly its size; throws std::invalid_argument otherwise).
  void write_tensor(std::span<const std::byte> bytes);
  // Checks that every tensor was written and closes the file; throws std::runtime_error on an
  // I/O error.
  void finish();

 private:
  struct Info {
    std::string name;
    DType dtype;
    Shape shape;
    std::uint64_t offset = 0, nbytes = 0;
  };
  void kv(const std::string& key, std::uint32_t type, const std::string& value);
  void pad_to_alignment();

  std::uint64_t alignment_;
  std::string kv_;
  std::uint64_t n_kv_ = 0;
  std::vector<Info> tensors_;
  std::uint64_t data_bytes_ = 0;
  std::size_t next_ = 0;
  std::uint64_t written_ = 0;  // bytes of the data region written so far
  std::ofstream out_;
  std::string path_;
};

}  // namespace kwaai::engine
