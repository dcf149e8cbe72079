// Helpers shared by the model tests: scratch folders, file writing, a safetensors writer and an
// independent (ifstream + JSON) safetensors reader to check the mmap reader against.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace kwaai::engine::test {

inline std::string shared_model_dir() {
  return std::string(KWAAI_SHARED_DIR) + "/models/stories260K";
}
inline std::string data_dir() {
  return std::string(KWAAI_SOURCE_DIR) + "/tests/engine/model/data";
}

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("kwaai_model_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// A safetensors file from a raw header JSON string and a data region.
inline std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  return le64(header_json.size()) + header_json + data;
}

struct StTensor {
  std::string name;
  std::string dtype;  // "F32", ...
  std::vector<std::int64_t> shape;
  std::string bytes;
};

// A well-formed safetensors file holding `tensors` back to back.
inline std::string make_safetensors(const std::vector<StTensor>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  std::string data;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype},
                 {"shape", t.shape},
                 {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  return safetensors_bytes(h.dump(), data);
}

inline std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// Independent reader: reads a tensor's f32 values with ifstream + nlohmann::json.
inline std::vector<float> reference_read_f32(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string hdr(n, '\0');
  in.read(hdr.data(), static_cast<std::streamsize>(n));
  auto j = nlohmann::json::parse(hdr);
  auto off = j.at(name).at("data_offsets");
  std::uint64_t b = off[0], e = off[1];
  std::vector<float> out((e - b) / 4);
  in.seekg(static_cast<std::streamoff>(8 + n + b));
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(e - b));
  return out;
}

inline std::vector<float> as_f32(const std::byte* p, std::size_t bytes) {
  std::vector<float> v(bytes / 4);
  std::memcpy(v.data(), p, v.size() * 4);
  return v;
}

}  // namespace kwaai::engine::test
