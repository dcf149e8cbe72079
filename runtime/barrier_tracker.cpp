#include "runtime/barrier_tracker.hpp"

namespace kwaai::runtime::detail {
namespace {

VkPipelineStageFlags stage_bit(StageKind s) {
  return s == StageKind::Compute ? VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT
                                 : VK_PIPELINE_STAGE_TRANSFER_BIT;
}

VkAccessFlags access_bit(StageKind s, bool write) {
  if (s == StageKind::Compute)
    return write ? VK_ACCESS_SHADER_WRITE_BIT : VK_ACCESS_SHADER_READ_BIT;
  return write ? VK_ACCESS_TRANSFER_WRITE_BIT : VK_ACCESS_TRANSFER_READ_BIT;
}

constexpr VkPipelineStageFlags kAllStages =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
constexpr VkAccessFlags kAllAccess = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;

bool overlaps(const AccessDecl& a, const AccessDecl& b) {
  return a.buffer == b.buffer && a.begin < b.end && b.begin < a.end;
}

}  // namespace

Barrier BarrierTracker::pending_scope() const {
  Barrier b;
  for (const auto& p : pending_) {
    b.src_stages |= stage_bit(p.stage);
    if (p.write) b.src_access |= access_bit(p.stage, true);
  }
  return b;
}

std::optional<Barrier> BarrierTracker::add(std::span<const AccessDecl> accesses) {
  bool hazard = false;
  for (const auto& a : accesses) {
    for (const auto& p : pending_) {
      if ((a.write || p.write) && overlaps(a, p)) {
        hazard = true;
        break;
      }
    }
    if (hazard) break;
  }
  std::optional<Barrier> out;
  if (hazard) {
    // The second scope is every stage and access kind the stream records, not just the new
    // command's: the pending set is cleared below, so a later command of the other kind
    // (e.g. a transfer reading what a compute pass wrote before this barrier) gets no
    // barrier of its own and must already be covered by this one.
    Barrier b = pending_scope();
    b.dst_stages = kAllStages;
    b.dst_access = kAllAccess;
    out = b;
    pending_.clear();
  }
  pending_.insert(pending_.end(), accesses.begin(), accesses.end());
  return out;
}

}  // namespace kwaai::runtime::detail
