#include "runtime/spirv_reflect.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace kwaai::runtime {
namespace {

// The few opcodes/enums of the SPIR-V spec (unified1) this reflection needs.
enum : std::uint32_t {
  kOpExecutionMode = 16,
  kOpTypeInt = 21,
  kOpTypeFloat = 22,
  kOpTypeVector = 23,
  kOpTypeMatrix = 24,
  kOpTypeArray = 28,
  kOpTypeRuntimeArray = 29,
  kOpTypeStruct = 30,
  kOpTypePointer = 32,
  kOpConstant = 43,
  kOpConstantComposite = 44,
  kOpSpecConstant = 50,
  kOpSpecConstantComposite = 51,
  kOpVariable = 59,
  kOpDecorate = 71,
  kOpMemberDecorate = 72,
  kOpExecutionModeId = 331,

  kDecSpecId = 1,
  kDecArrayStride = 6,
  kDecMatrixStride = 7,
  kDecBuiltIn = 11,
  kDecBinding = 33,
  kDecDescriptorSet = 34,
  kDecOffset = 35,
  kBuiltInWorkgroupSize = 25,

  kModeLocalSize = 17,
  kModeLocalSizeId = 38,

  kStorageUniformConstant = 0,
  kStorageUniform = 2,
  kStoragePushConstant = 9,
  kStorageStorageBuffer = 12,
};

struct Type {
  std::uint32_t op = 0;
  std::vector<std::uint32_t> operands;  // words after the result id
};

struct Module {
  std::unordered_map<std::uint32_t, Type> types;
  std::unordered_map<std::uint32_t, std::uint32_t> constants;  // id -> first value word
  std::unordered_map<std::uint32_t, std::uint32_t> spec_ids;   // id -> SpecId
  std::unordered_map<std::uint32_t, std::uint32_t> bindings, sets, array_strides, matrix_strides;
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> composites;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint32_t> member_offsets;
  std::uint32_t workgroup_size_id = 0;
  struct Var {
    std::uint32_t id, pointer_type, storage;
  };
  std::vector<Var> variables;

  std::uint64_t size_of(std::uint32_t type_id, int depth = 0) const {
    if (depth > 32) throw std::invalid_argument("SPIR-V: type nesting too deep");
    auto it = types.find(type_id);
    if (it == types.end())
      throw std::invalid_argument("SPIR-V: unknown type id " + std::to_string(type_id));
    const Type& t = it->second;
    auto operand = [&](std::size_t i) {
      if (i >= t.operands.size()) throw std::invalid_argument("SPIR-V: short type");
      return t.operands[i];
    };
    switch (t.op) {
      case kOpTypeInt:
      case kOpTypeFloat:
        return operand(0) / 8;
      case kOpTypeVector:
        return size_of(operand(0), depth + 1) * operand(1);
      case kOpTypeMatrix: {
        auto s = matrix_strides.find(type_id);
        return std::uint64_t(operand(1)) *
               (s != matrix_strides.end() ? s->second : size_of(operand(0), depth + 1));
      }
      case kOpTypeArray: {
        auto len = constants.find(operand(1));
        if (len == constants.end()) throw std::invalid_argument("SPIR-V: array length unknown");
        auto s = array_strides.find(type_id);
        return std::uint64_t(len->second) *
               (s != array_strides.end() ? s->second : size_of(operand(0), depth + 1));
      }
      case kOpTypeRuntimeArray:
        return 0;
      case kOpTypeStruct: {
        std::uint64_t end = 0;
        for (std::uint32_t m = 0; m < t.operands.size(); ++m) {
          auto off = member_offsets.find({type_id, m});
          const std::uint64_t o = off != member_offsets.end() ? off->second : end;
          end = std::max(end, o + size_of(t.operands[m], depth + 1));
        }
        return end;
      }
      default:
        throw std::invalid_argument("SPIR-V: unsupported type opcode " + std::to_string(t.op) +
                                    " in a push-constant block");
    }
  }
};

}  // namespace

SpirvInfo reflect_spirv(std::span<const std::uint32_t> w) {
  if (w.size() < 5 || w[0] != 0x07230203u)
    throw std::invalid_argument("SPIR-V: missing header or bad magic number");
  Module m;
  SpirvInfo info;
  std::array<std::uint32_t, 3> local_size_ids{0, 0, 0};
  bool have_local_size_ids = false;

  for (std::size_t i = 5; i < w.size();) {
    const std::uint32_t count = w[i] >> 16, op = w[i] & 0xffffu;
    if (count == 0 || i + count > w.size())
      throw std::invalid_argument("SPIR-V: bad instruction length at word " + std::to_string(i));
    auto arg = [&](std::uint32_t k) { return k < count ? w[i + k] : 0u; };
    switch (op) {
      case kOpExecutionMode:
        if (arg(2) == kModeLocalSize && count >= 6) info.local_size = {arg(3), arg(4), arg(5)};
        break;
      case kOpExecutionModeId:
        if (arg(2) == kModeLocalSizeId && count >= 6) {
          local_size_ids = {arg(3), arg(4), arg(5)};
          have_local_size_ids = true;
        }
        break;
      case kOpTypeInt:
      case kOpTypeFloat:
      case kOpTypeVector:
      case kOpTypeMatrix:
      case kOpTypeArray:
      case kOpTypeRuntimeArray:
      case kOpTypeStruct:
      case kOpTypePointer: {
        Type t{op, {}};
        for (std::uint32_t k = 2; k < count; ++k) t.operands.push_back(w[i + k]);
        m.types[arg(1)] = std::move(t);
        break;
      }
      case kOpConstant:
      case kOpSpecConstant:
        if (count >= 4) m.constants[arg(2)] = arg(3);
        break;
      case kOpConstantComposite:
      case kOpSpecConstantComposite: {
        std::vector<std::uint32_t> parts;
        for (std::uint32_t k = 3; k < count; ++k) parts.push_back(w[i + k]);
        m.composites[arg(2)] = std::move(parts);
        break;
      }
      case kOpVariable:
        m.variables.push_back({arg(2), arg(1), arg(3)});
        break;
      case kOpDecorate:
        switch (arg(2)) {
          case kDecSpecId:
            m.spec_ids[arg(1)] = arg(3);
            info.spec_constant_ids.push_back(arg(3));
            break;
          case kDecBinding:
            m.bindings[arg(1)] = arg(3);
            break;
          case kDecDescriptorSet:
            m.sets[arg(1)] = arg(3);
            break;
          case kDecArrayStride:
            m.array_strides[arg(1)] = arg(3);
            break;
          case kDecMatrixStride:
            m.matrix_strides[arg(1)] = arg(3);
            break;
          case kDecBuiltIn:
            if (arg(3) == kBuiltInWorkgroupSize) m.workgroup_size_id = arg(1);
            break;
          default:
            break;
        }
        break;
      case kOpMemberDecorate:
        if (arg(3) == kDecOffset) m.member_offsets[{arg(1), arg(2)}] = arg(4);
        if (arg(3) == kDecMatrixStride) m.matrix_strides[arg(1)] = arg(4);
        break;
      default:
        break;
    }
    i += count;
  }

  for (const auto& v : m.variables) {
    if (v.storage == kStoragePushConstant) {
      auto p = m.types.find(v.pointer_type);
      if (p == m.types.end() || p->second.op != kOpTypePointer || p->second.operands.size() < 2)
        throw std::invalid_argument("SPIR-V: push-constant variable without a pointer type");
      info.push_constant_bytes = static_cast<std::uint32_t>(m.size_of(p->second.operands[1]));
    } else if (v.storage == kStorageStorageBuffer || v.storage == kStorageUniform ||
               v.storage == kStorageUniformConstant) {
      auto b = m.bindings.find(v.id);
      if (b == m.bindings.end()) continue;
      auto s = m.sets.find(v.id);
      info.bindings.push_back({s == m.sets.end() ? 0u : s->second, b->second});
    }
  }
  std::sort(info.bindings.begin(), info.bindings.end(), [](auto& a, auto& b) {
    return a.set != b.set ? a.set < b.set : a.binding < b.binding;
  });

  // Local size through spec constants: the WorkgroupSize built-in composite wins over the
  // LocalSize execution mode (SPIR-V rule); LocalSizeId names the ids directly.
  std::array<std::uint32_t, 3> ids{0, 0, 0};
  bool have_ids = false;
  if (m.workgroup_size_id) {
    auto c = m.composites.find(m.workgroup_size_id);
    if (c != m.composites.end() && c->second.size() == 3) {
      ids = {c->second[0], c->second[1], c->second[2]};
      have_ids = true;
    }
  } else if (have_local_size_ids) {
    ids = local_size_ids;
    have_ids = true;
  }
  if (have_ids) {
    for (int k = 0; k < 3; ++k) {
      auto v = m.constants.find(ids[k]);
      if (v != m.constants.end()) info.local_size[k] = v->second;
      auto s = m.spec_ids.find(ids[k]);
      if (s != m.spec_ids.end()) info.local_size_spec_id[k] = s->second;
    }
  }
  std::sort(info.spec_constant_ids.begin(), info.spec_constant_ids.end());
  return info;
}

}  // namespace kwaai::runtime
