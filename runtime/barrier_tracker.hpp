// Internal (exposed for unit tests): derives pipeline barriers from declared buffer accesses.
//
// The tracker holds every access recorded since the last barrier. A new command that reads
// what one of them wrote (RAW), writes what one of them read (WAR) or wrote (WAW), on an
// overlapping byte range of the same VkBuffer, needs a barrier first. The barrier's first
// scope is every stage used since the last barrier (so it orders *all* of them, which is why
// the pending set can then be cleared), its second scope every stage and access kind a stream
// records (compute and transfer, reads and writes) -- because the pending set is cleared, any
// later command may depend on what came before, whatever its kind. The first scope's access
// mask covers the pending writes (make them available); a pure WAR still gets an execution
// dependency.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "runtime/vk.hpp"

namespace kwaai::runtime::detail {

enum class StageKind : std::uint8_t { Compute, Transfer };

struct AccessDecl {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize begin = 0, end = 0;  // byte range [begin, end)
  bool write = false;
  StageKind stage = StageKind::Compute;
};

struct Barrier {
  VkPipelineStageFlags src_stages = 0, dst_stages = 0;
  VkAccessFlags src_access = 0, dst_access = 0;
};

class BarrierTracker {
 public:
  // The barrier to record before a command making `accesses` (nullopt: none needed), and
  // records the accesses as pending.
  std::optional<Barrier> add(std::span<const AccessDecl> accesses);
  // Start of a new command buffer: nothing pending.
  void reset() { pending_.clear(); }
  // Union of the stages/write accesses pending (for the final barrier before host reads).
  Barrier pending_scope() const;

 private:
  std::vector<AccessDecl> pending_;
};

}  // namespace kwaai::runtime::detail
