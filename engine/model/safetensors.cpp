#include "engine/model/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace kwaai::engine {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw std::runtime_error("safetensors '" + origin + "': " + what);
}

DType parse_dtype(const std::string& origin, const std::string& tensor, const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I32") return DType::I32;
  fail(origin,
       "tensor '" + tensor + "': dtype " + s + " is not supported (accepted: F32, F16, BF16, I32)");
}

std::size_t elem_size(DType t) {
  return t == DType::F32 || t == DType::I32 ? 4 : 2;
}

}  // namespace

SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& origin) {
  if (file.size() < 8) {
    fail(origin, "file is " + std::to_string(file.size()) +
                     " bytes, shorter than the 8-byte header length");
  }
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(file[i]);
  if (n > kSafetensorsMaxHeader) {
    fail(origin, "header length " + std::to_string(n) + " exceeds the limit of " +
                     std::to_string(kSafetensorsMaxHeader) + " bytes");
  }
  if (n > file.size() - 8) {
    fail(origin, "header length " + std::to_string(n) + " runs past the end of the " +
                     std::to_string(file.size()) + "-byte file");
  }
  SafetensorsHeader h;
  h.data_start = 8 + n;
  const std::uint64_t data_size = file.size() - h.data_start;

  json j;
  try {
    const char* p = reinterpret_cast<const char*>(file.data() + 8);
    j = json::parse(p, p + n);
  } catch (const json::exception& e) {
    fail(origin, std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(origin, "header JSON is not an object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(origin, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(origin, "__metadata__['" + m.key() + "'] is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail(origin, "tensor '" + name + "': entry is not an object");
    auto d = v.find("dtype");
    auto s = v.find("shape");
    auto o = v.find("data_offsets");
    if (d == v.end() || !d->is_string())
      fail(origin, "tensor '" + name + "': missing string 'dtype'");
    if (s == v.end() || !s->is_array())
      fail(origin, "tensor '" + name + "': missing array 'shape'");
    if (o == v.end() || !o->is_array() || o->size() != 2) {
      fail(origin, "tensor '" + name + "': 'data_offsets' must be [begin, end]");
    }
    SafetensorsEntry e;
    e.name = name;
    e.dtype = parse_dtype(origin, name, d->get<std::string>());
    if (s->size() > kSafetensorsMaxRank) {
      fail(origin, "tensor '" + name + "': rank " + std::to_string(s->size()) + " exceeds " +
                       std::to_string(kSafetensorsMaxRank));
    }
    // Element count with overflow checks: every dimension bounded by the data size keeps the
    // product check below simple and exact.
    std::uint64_t numel = 1;
    for (const json& dim : *s) {
      if (!dim.is_number_integer())
        fail(origin, "tensor '" + name + "': shape entries must be integers");
      if (dim.is_number_unsigned() ? false : dim.get<std::int64_t>() < 0) {
        fail(origin, "tensor '" + name + "': negative dimension " + dim.dump());
      }
      std::uint64_t x = dim.get<std::uint64_t>();
      if (x > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(origin, "tensor '" + name + "': dimension " + dim.dump() + " is too large");
      }
      if (x != 0 && numel > std::numeric_limits<std::uint64_t>::max() / 8 / x) {
        fail(origin, "tensor '" + name + "': shape " + s->dump() + " overflows");
      }
      numel *= x;
      e.shape.push_back(static_cast<std::int64_t>(x));
    }
    for (const json& off : *o) {
      if (!off.is_number_unsigned() && !(off.is_number_integer() && off.get<std::int64_t>() >= 0)) {
        fail(origin, "tensor '" + name + "': data_offsets must be non-negative integers");
      }
    }
    e.begin = (*o)[0].get<std::uint64_t>();
    e.end = (*o)[1].get<std::uint64_t>();
    if (e.begin > e.end || e.end > data_size) {
      fail(origin, "tensor '" + name + "': data_offsets [" + std::to_string(e.begin) + ", " +
                       std::to_string(e.end) + ") outside the data region of " +
                       std::to_string(data_size) + " bytes");
    }
    const std::uint64_t want = numel * elem_size(e.dtype);
    if (e.end - e.begin != want) {
      fail(origin, "tensor '" + name + "': " + std::to_string(e.end - e.begin) +
                       " bytes in data_offsets but shape " + shape_str(e.shape) + " x " +
                       d->get<std::string>() + " needs " + std::to_string(want));
    }
    h.tensors.push_back(std::move(e));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by start: an overlap can only be with the predecessor that reaches furthest.
  std::uint64_t reach = 0;
  const SafetensorsEntry* reach_by = nullptr;
  for (const auto& e : h.tensors) {
    if (e.begin == e.end) continue;  // empty tensors occupy no bytes
    if (reach_by != nullptr && e.begin < reach) {
      fail(origin, "tensors '" + reach_by->name + "' and '" + e.name + "' overlap (byte " +
                       std::to_string(e.begin) + " < " + std::to_string(reach) + ")");
    }
    if (e.end > reach) {
      reach = e.end;
      reach_by = &e;
    }
  }
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  header_ = parse_safetensors(file_.bytes(), path);
  for (std::size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::view(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (e == nullptr)
    throw std::out_of_range("safetensors '" + path() + "': no tensor '" + name + "'");
  TensorView v;
  v.name = name;
  v.dtype = e->dtype;
  v.shape = e->shape;
  v.data = file_.bytes().subspan(header_.data_start + e->begin, e->end - e->begin);
  return v;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.tensors.size());
  for (const auto& e : header_.tensors) out.push_back(e.name);
  return out;
}

// ---- checkpoints ----

namespace fs = std::filesystem;

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& path) {
  fs::path p(path);
  fs::path index;
  fs::path single;
  if (fs::is_directory(p)) {
    if (fs::exists(p / "model.safetensors.index.json")) {
      index = p / "model.safetensors.index.json";
    } else if (fs::exists(p / "model.safetensors")) {
      single = p / "model.safetensors";
    } else {
      throw std::runtime_error(
          "'" + path + "' holds neither model.safetensors nor model.safetensors.index.json");
    }
  } else if (p.filename().string().ends_with(".index.json")) {
    index = p;
  } else {
    single = p;
  }
  if (!single.empty()) {
    dir_ = single.parent_path().string();
    const std::string rel = single.filename().string();
    shards_[rel] = std::make_unique<SafetensorsFile>(single.string());
    for (const auto& n : shards_[rel]->names()) weight_map_[n] = rel;
    return;
  }
  sharded_ = true;
  dir_ = index.parent_path().string();
  std::ifstream in(index);
  if (!in) throw std::runtime_error("cannot open '" + index.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw std::runtime_error("'" + index.string() + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    throw std::runtime_error("'" + index.string() + "' has no 'weight_map' object");
  }
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) {
      throw std::runtime_error("'" + index.string() + "': weight_map['" + it.key() +
                               "'] is not a string");
    }
    const std::string shard = it.value().get<std::string>();
    // Shards must sit beside the index: no absolute paths or parent escapes.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      throw std::runtime_error("'" + index.string() + "': shard name '" + shard + "' for '" +
                               it.key() + "' is not a plain file name");
    }
    weight_map_[it.key()] = shard;
  }
}

bool SafetensorsCheckpoint::has(const std::string& name) const {
  return weight_map_.count(name) != 0;
}

const SafetensorsFile& SafetensorsCheckpoint::shard_for(const std::string& name) const {
  auto it = weight_map_.find(name);
  if (it == weight_map_.end()) {
    throw std::out_of_range("checkpoint '" + dir_ + "': no tensor '" + name + "'");
  }
  auto& slot = shards_[it->second];
  if (!slot) {
    slot = std::make_unique<SafetensorsFile>((fs::path(dir_) / it->second).string());
  }
  if (!slot->has(name)) {
    throw std::runtime_error("checkpoint '" + dir_ + "': index maps '" + name + "' to '" +
                             it->second + "' but that shard does not contain it");
  }
  return *slot;
}

const SafetensorsEntry& SafetensorsCheckpoint::entry(const std::string& name) const {
  return *shard_for(name).find(name);
}

TensorView SafetensorsCheckpoint::view(const std::string& name) const {
  return shard_for(name).view(name);
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [n, s] : weight_map_) out.push_back(n);
  return out;
}

std::vector<std::string> SafetensorsCheckpoint::opened_shards() const {
  std::vector<std::string> out;
  for (const auto& [n, f] : shards_) {
    if (f) out.push_back(n);
  }
  return out;
}

}  // namespace kwaai::engine
