#include "engine/model/gguf.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "engine/core/formats.hpp"

namespace kwaai::engine {
namespace {

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw std::runtime_error("gguf '" + origin + "': " + what);
}

// Bounds-checked little-endian cursor over the file bytes.
class Cursor {
 public:
  Cursor(std::span<const std::byte> b, const std::string& origin) : b_(b), origin_(origin) {}

  std::size_t pos() const { return pos_; }
  void need(std::uint64_t n, const char* what) const {
    if (n > b_.size() - pos_) {
      fail(origin_, std::string("truncated: ") + what + " needs " + std::to_string(n) +
                        " bytes at offset " + std::to_string(pos_) + ", file is " +
                        std::to_string(b_.size()) + " bytes");
    }
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));  // host is little-endian (x86-64/arm64)
    pos_ += sizeof(T);
    return v;
  }
  std::string str(std::uint64_t max_len, const char* what) {
    auto n = read<std::uint64_t>(what);
    if (n > max_len) {
      fail(origin_, std::string(what) + ": string length " + std::to_string(n) +
                        " exceeds the limit of " + std::to_string(max_len));
    }
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::byte> b_;
  const std::string& origin_;
  std::size_t pos_ = 0;
};

// Smallest encoding of one value of type t (strings: the length; arrays: type + count).
std::uint64_t min_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::STRING:
      return 8;
    case GgufType::ARRAY:
      return 12;
    default:
      return 8;
  }
}

struct Parser {
  Cursor& c;
  const std::string& origin;
  const GgufLimits& lim;
  std::uint64_t total_items = 0;

  GgufValue value(GgufType t, std::uint32_t depth, const std::string& key) {
    GgufValue v;
    v.type = t;
    switch (t) {
      case GgufType::U8:
        v.u = c.read<std::uint8_t>("u8 value");
        break;
      case GgufType::I8:
        v.i = c.read<std::int8_t>("i8 value");
        break;
      case GgufType::U16:
        v.u = c.read<std::uint16_t>("u16 value");
        break;
      case GgufType::I16:
        v.i = c.read<std::int16_t>("i16 value");
        break;
      case GgufType::U32:
        v.u = c.read<std::uint32_t>("u32 value");
        break;
      case GgufType::I32:
        v.i = c.read<std::int32_t>("i32 value");
        break;
      case GgufType::U64:
        v.u = c.read<std::uint64_t>("u64 value");
        break;
      case GgufType::I64:
        v.i = c.read<std::int64_t>("i64 value");
        break;
      case GgufType::F32:
        v.f = c.read<float>("f32 value");
        break;
      case GgufType::F64:
        v.f = c.read<double>("f64 value");
        break;
      case GgufType::BOOL: {
        auto b = c.read<std::uint8_t>("bool value");
        if (b > 1) fail(origin, "key '" + key + "': bool value " + std::to_string(b));
        v.u = b;
        break;
      }
      case GgufType::STRING:
        v.s = c.str(lim.max_string, "string value");
        break;
      case GgufType::ARRAY: {
        if (depth >= lim.max_depth) fail(origin, "key '" + key + "': arrays nested too deep");
        auto et = c.read<std::uint32_t>("array type");
        if (et > static_cast<std::uint32_t>(GgufType::F64)) {
          fail(origin, "key '" + key + "': unknown array element type " + std::to_string(et));
        }
        v.elem_type = static_cast<GgufType>(et);
        auto n = c.read<std::uint64_t>("array length");
        if (n > lim.max_array) {
          fail(origin, "key '" + key + "': array of " + std::to_string(n) +
                           " elements exceeds the limit of " + std::to_string(lim.max_array));
        }
        total_items += n;
        if (total_items > lim.max_total_items) {
          fail(origin, "key '" + key + "': more than " + std::to_string(lim.max_total_items) +
                           " array elements in the file");
        }
        // A count beyond what the remaining bytes can hold is a lie, caught before reserving
        // memory for it.
        c.need(n * min_size(v.elem_type), "array elements");
        v.items.reserve(n);
        for (std::uint64_t k = 0; k < n; ++k) v.items.push_back(value(v.elem_type, depth + 1, key));
        break;
      }
      default:
        fail(origin, "key '" + key + "': unknown value type " +
                         std::to_string(static_cast<std::uint32_t>(t)));
    }
    return v;
  }
};

struct TypeInfo {
  DType dtype;
  std::uint64_t block;        // elements per block
  std::uint64_t block_bytes;  // bytes per block
};

// A tensor type we can load: a weight format of the format table with a GGUF type id.
bool supported_type(std::uint32_t t, TypeInfo& out) {
  const FormatInfo* f = find_gguf_format(t);
  if (!f || !f->weight) return false;
  out = {f->dtype, static_cast<std::uint64_t>(f->block_elems), f->block_bytes};
  return true;
}

bool gguf_weight_format(const FormatInfo& f) {
  return f.weight && f.gguf_type >= 0;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<std::uint32_t>(t);
  return i < std::size(names) ? names[i] : "unknown";
}

std::string ggml_type_name(std::uint32_t t) {
  static const char* names[] = {"F32",     "F16",      "Q4_0",     "Q4_1",     "Q4_2",    "Q4_3",
                                "Q5_0",    "Q5_1",     "Q8_0",     "Q8_1",     "Q2_K",    "Q3_K",
                                "Q4_K",    "Q5_K",     "Q6_K",     "Q8_K",     "IQ2_XXS", "IQ2_XS",
                                "IQ3_XXS", "IQ1_S",    "IQ4_NL",   "IQ3_S",    "IQ2_S",   "IQ4_XS",
                                "I8",      "I16",      "I32",      "I64",      "F64",     "IQ1_M",
                                "BF16",    "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",   "TQ2_0"};
  if (t < std::size(names)) return std::string(names[t]) + " (type " + std::to_string(t) + ")";
  return "type " + std::to_string(t);
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}

std::int64_t GgufValue::as_int() const {
  switch (type) {
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      return i;
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw std::runtime_error("gguf value " + std::to_string(u) + " does not fit in int64");
      }
      return static_cast<std::int64_t>(u);
    default:
      throw std::runtime_error(std::string("gguf value: expected an integer, got ") +
                               gguf_type_name(type));
  }
}

double GgufValue::as_float() const {
  if (type == GgufType::F32 || type == GgufType::F64) return f;
  if (is_integer()) return static_cast<double>(as_int());
  throw std::runtime_error(std::string("gguf value: expected a number, got ") +
                           gguf_type_name(type));
}

bool GgufValue::as_bool() const {
  if (type != GgufType::BOOL) {
    throw std::runtime_error(std::string("gguf value: expected bool, got ") + gguf_type_name(type));
  }
  return u != 0;
}

const std::string& GgufValue::as_string() const {
  if (type != GgufType::STRING) {
    throw std::runtime_error(std::string("gguf value: expected string, got ") +
                             gguf_type_name(type));
  }
  return s;
}

const std::vector<GgufValue>& GgufValue::as_array() const {
  if (type != GgufType::ARRAY) {
    throw std::runtime_error(std::string("gguf value: expected array, got ") +
                             gguf_type_name(type));
  }
  return items;
}

const GgufValue* GgufHeader::find(const std::string& key) const {
  auto it = kv.find(key);
  return it == kv.end() ? nullptr : &it->second;
}

GgufHeader parse_gguf(std::span<const std::byte> file, const std::string& origin,
                      const GgufLimits& lim) {
  Cursor c(file, origin);
  GgufHeader h;
  auto magic = c.read<std::uint32_t>("magic");
  if (magic != 0x46554747u) fail(origin, "not a GGUF file (bad magic)");
  h.version = c.read<std::uint32_t>("version");
  if (h.version != 3 && h.version != 2) {
    fail(origin, "GGUF version " + std::to_string(h.version) + " is not supported (2, 3)");
  }
  auto n_tensors = c.read<std::uint64_t>("tensor count");
  auto n_kv = c.read<std::uint64_t>("metadata count");
  if (n_tensors > lim.max_tensors) {
    fail(origin, std::to_string(n_tensors) + " tensors exceed the limit of " +
                     std::to_string(lim.max_tensors));
  }
  if (n_kv > lim.max_kv) {
    fail(origin, std::to_string(n_kv) + " metadata entries exceed the limit of " +
                     std::to_string(lim.max_kv));
  }
  Parser p{c, origin, lim};
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str(lim.max_string, "metadata key");
    auto t = c.read<std::uint32_t>("metadata type");
    if (t > static_cast<std::uint32_t>(GgufType::F64)) {
      fail(origin, "key '" + key + "': unknown value type " + std::to_string(t));
    }
    GgufValue v = p.value(static_cast<GgufType>(t), 0, key);
    if (!h.kv.emplace(key, std::move(v)).second)
      fail(origin, "duplicate metadata key '" + key + "'");
  }
  if (const GgufValue* a = h.find("general.alignment")) {
    if (!a->is_integer()) fail(origin, "general.alignment is not an integer");
    std::int64_t al = a->as_int();
    if (al <= 0 || al > (1 << 20) || (al & (al - 1)) != 0) {
      fail(origin,
           "general.alignment " + std::to_string(al) + " is not a power of two in [1, 2^20]");
    }
    h.alignment = static_cast<std::uint64_t>(al);
  }

  std::vector<std::string> seen;
  for (std::uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo ti;
    ti.name = c.str(lim.max_string, "tensor name");
    auto nd = c.read<std::uint32_t>("tensor n_dims");
    if (nd == 0 || nd > lim.max_dims) {
      fail(origin, "tensor '" + ti.name + "': " + std::to_string(nd) + " dimensions (1.." +
                       std::to_string(lim.max_dims) + " allowed)");
    }
    std::vector<std::uint64_t> ne(nd);
    std::uint64_t numel = 1;
    for (auto& d : ne) {
      d = c.read<std::uint64_t>("tensor dimension");
      if (d > (1ull << 40) || (d != 0 && numel > (1ull << 50) / d)) {
        fail(origin, "tensor '" + ti.name + "': absurd dimension " + std::to_string(d));
      }
      numel *= d;
    }
    ti.ggml_type = c.read<std::uint32_t>("tensor type");
    ti.offset = c.read<std::uint64_t>("tensor offset");
    TypeInfo tinfo{};
    if (!supported_type(ti.ggml_type, tinfo)) {
      fail(origin, "tensor '" + ti.name + "': " + ggml_type_name(ti.ggml_type) +
                       " is not supported (" + format_names(gguf_weight_format) + ")");
    }
    if (ne[0] % tinfo.block != 0) {
      fail(origin, "tensor '" + ti.name + "': row length " + std::to_string(ne[0]) +
                       " is not a multiple of the " + std::to_string(tinfo.block) + "-value block");
    }
    ti.dtype = tinfo.dtype;
    ti.nbytes = numel / tinfo.block * tinfo.block_bytes;
    for (auto it = ne.rbegin(); it != ne.rend(); ++it)
      ti.shape.push_back(static_cast<std::int64_t>(*it));
    if (ti.offset % h.alignment != 0) {
      fail(origin, "tensor '" + ti.name + "': offset " + std::to_string(ti.offset) +
                       " is not aligned to " + std::to_string(h.alignment));
    }
    h.tensors.push_back(std::move(ti));
  }
  const std::uint64_t pos = c.pos();
  h.data_start = (pos + h.alignment - 1) / h.alignment * h.alignment;
  if (h.data_start > file.size()) fail(origin, "truncated: no data region after the tensor infos");
  const std::uint64_t data_size = file.size() - h.data_start;

  // Offsets inside the data region, names unique, byte ranges disjoint.
  std::vector<const GgufTensorInfo*> order;
  for (const auto& t : h.tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail(origin, "tensor '" + t.name + "': bytes [" + std::to_string(t.offset) + ", +" +
                       std::to_string(t.nbytes) + ") run past the data region of " +
                       std::to_string(data_size) + " bytes");
    }
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (std::size_t k = 1; k < order.size(); ++k) {
    if (order[k]->name == order[k - 1]->name)
      fail(origin, "duplicate tensor '" + order[k]->name + "'");
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  std::uint64_t reach = 0;
  const GgufTensorInfo* reach_by = nullptr;
  for (auto* t : order) {
    if (t->nbytes == 0) continue;
    if (reach_by != nullptr && t->offset < reach) {
      fail(origin, "tensors '" + reach_by->name + "' and '" + t->name + "' overlap (offset " +
                       std::to_string(t->offset) + " < " + std::to_string(reach) + ")");
    }
    if (t->offset + t->nbytes > reach) {
      reach = t->offset + t->nbytes;
      reach_by = t;
    }
  }
  return h;
}

GgufFile::GgufFile(const std::string& path, const GgufLimits& limits) : file_(path) {
  header_ = parse_gguf(file_.bytes(), path, limits);
  for (std::size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView GgufFile::view(const std::string& name) const {
  const GgufTensorInfo* t = find(name);
  if (t == nullptr) throw std::out_of_range("gguf '" + path() + "': no tensor '" + name + "'");
  TensorView v;
  v.name = name;
  v.dtype = t->dtype;
  v.shape = t->shape;
  v.data = file_.bytes().subspan(header_.data_start + t->offset, t->nbytes);
  return v;
}

}  // namespace kwaai::engine
