// safetensors reader: strict header validation over a memory-mapped file, plus sharded
// checkpoints (model.safetensors.index.json) whose shards are opened only when needed.
//
// File layout: u64 little-endian header length N, N bytes of JSON
//   { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//     "__metadata__": {"k": "v"} }
// then the data region; offsets are relative to the data region's start (8 + N).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/model/host_tensor.hpp"
#include "engine/model/mapped_file.hpp"

namespace kwaai::engine {

// Header JSON larger than this is refused (real checkpoints stay far below it).
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100ull << 20;
inline constexpr std::size_t kSafetensorsMaxRank = 8;

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::uint64_t begin = 0;  // relative to the data region
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::uint64_t data_start = 0;           // absolute file offset of the data region
  std::vector<SafetensorsEntry> tensors;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
};

// Pure parser over the complete file bytes (fuzzable). Accepts dtypes F32, F16, BF16 and I32
// (I32 for reference/id tensors; model loading uses only the float ones); any other dtype,
// a header length beyond the file or kSafetensorsMaxHeader, negative or overflowing shapes,
// offsets outside the data region, a byte size that disagrees with shape x dtype, or two
// tensors whose byte ranges overlap throw std::runtime_error naming `origin`, the tensor and
// the numbers involved.
SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& origin);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // maps + validates

  const std::string& path() const { return file_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const SafetensorsEntry* find(const std::string& name) const;
  // Zero-copy view into the mapping; throws std::out_of_range naming the file and tensor.
  TensorView view(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::unordered_map<std::string, std::size_t> index_;
};

// A checkpoint folder: either one `model.safetensors` or `model.safetensors.index.json` whose
// weight_map names a shard per tensor. Shards are mapped lazily on first access, so a node
// serving blocks [a, b) never opens shards holding only other blocks.
// Not thread-safe for concurrent first access (load from one thread).
class SafetensorsCheckpoint {
 public:
  // `dir` is a folder (index.json preferred, else model.safetensors) or a single .safetensors
  // file or an index.json path.
  explicit SafetensorsCheckpoint(const std::string& path);

  bool has(const std::string& name) const;
  // dtype + shape without mapping anything for sharded checkpoints whose shard is not open yet
  // is impossible (the shapes live in the shard header), so this opens the owning shard.
  const SafetensorsEntry& entry(const std::string& name) const;
  TensorView view(const std::string& name) const;
  std::vector<std::string> names() const;
  // Shard file names (relative) opened so far, for tests and logs.
  std::vector<std::string> opened_shards() const;
  bool sharded() const { return sharded_; }

 private:
  const SafetensorsFile& shard_for(const std::string& name) const;

  std::string dir_;
  bool sharded_ = false;
  std::map<std::string, std::string> weight_map_;  // tensor -> shard file (relative)
  mutable std::map<std::string, std::unique_ptr<SafetensorsFile>> shards_;
};

}  // namespace kwaai::engine
