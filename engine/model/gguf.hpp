// GGUF v3 reader (llama.cpp's single-file format): header, metadata key/values of every value
// type, tensor infos, alignment and data offsets, all validated against the file size and
// against limits, so a hostile file gives a clear error rather than a huge allocation.
//
// Layout (little-endian): "GGUF" u32 version(3) u64 n_tensors u64 n_kv,
//   n_kv x { string key, u32 type, value },
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
//   padding to `general.alignment` (default 32), data region (offsets relative to it).
// Strings are u64 length + bytes; arrays are u32 elem type + u64 count + elements.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/model/host_tensor.hpp"
#include "engine/model/mapped_file.hpp"

namespace kwaai::engine {

enum class GgufType : std::uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);

struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem_type = GgufType::U8;  // arrays only
  std::uint64_t u = 0;                // unsigned ints and bool
  std::int64_t i = 0;                 // signed ints
  double f = 0;                       // floats
  std::string s;                      // strings
  std::vector<GgufValue> items;       // arrays

  // Typed access; throw std::runtime_error naming the expected and actual type.
  bool is_integer() const;
  std::int64_t as_int() const;  // any integer type (u64 above INT64_MAX throws)
  double as_float() const;      // floats and integers
  bool as_bool() const;
  const std::string& as_string() const;
  const std::vector<GgufValue>& as_array() const;
};

struct GgufLimits {
  std::uint64_t max_tensors = 1u << 16;
  std::uint64_t max_kv = 1u << 16;
  std::uint64_t max_string = 1u << 20;       // bytes per string
  std::uint64_t max_array = 1u << 24;        // elements per array (vocab sizes ~256k)
  std::uint64_t max_total_items = 1u << 25;  // array elements across the whole file
  std::uint32_t max_dims = 4;
  std::uint32_t max_depth = 2;  // arrays of arrays
};

struct GgufTensorInfo {
  std::string name;
  std::uint32_t ggml_type = 0;
  DType dtype = DType::F32;
  Shape shape;               // row-major, slowest first (GGUF ne[] reversed)
  std::uint64_t offset = 0;  // relative to the data region
  std::uint64_t nbytes = 0;
};

struct GgufHeader {
  std::uint32_t version = 0;
  std::uint64_t alignment = 32;
  std::uint64_t data_start = 0;  // absolute file offset
  std::map<std::string, GgufValue> kv;
  std::vector<GgufTensorInfo> tensors;

  const GgufValue* find(const std::string& key) const;
};

// ggml type names ("Q4_K", ...) for messages; "type N" when unknown.
std::string ggml_type_name(std::uint32_t t);

// Pure parser over the complete file bytes (fuzzable). Accepts version 3 (and 2, whose layout is
// the same); tensor types: the format table's rows with a GGUF id (F32, F16, BF16, Q8_0, Q4_0,
// Q4_K, Q5_K, Q6_K); any other type throws "<file>: tensor '<name>': Q3_K (type 11) is not
// supported". Every error is std::runtime_error.
GgufHeader parse_gguf(std::span<const std::byte> file, const std::string& origin,
                      const GgufLimits& limits = {});

class GgufFile {
 public:
  explicit GgufFile(const std::string& path, const GgufLimits& limits = {});

  const std::string& path() const { return file_.path(); }
  const GgufHeader& header() const { return header_; }
  const GgufTensorInfo* find(const std::string& name) const;
  // Zero-copy view in GGUF naming and layout; throws std::out_of_range naming the tensor.
  TensorView view(const std::string& name) const;

 private:
  MappedFile file_;
  GgufHeader header_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace kwaai::engine
