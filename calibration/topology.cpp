#include "calibration/topology.hpp"

#include <hwloc.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace kwaai::calibration {
namespace {

// Move-only owner of an hwloc topology.
class Topology {
 public:
  Topology() {
    if (hwloc_topology_init(&t_) != 0) throw std::runtime_error("hwloc_topology_init failed");
    if (hwloc_topology_load(t_) != 0) {
      hwloc_topology_destroy(t_);
      throw std::runtime_error("hwloc_topology_load failed");
    }
  }
  ~Topology() { hwloc_topology_destroy(t_); }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  hwloc_topology_t get() const { return t_; }

 private:
  hwloc_topology_t t_ = nullptr;
};

std::uint32_t count(hwloc_topology_t t, hwloc_obj_type_t type) {
  const int n = hwloc_get_nbobjs_by_type(t, type);
  return n > 0 ? static_cast<std::uint32_t>(n) : 0;
}

void cache(hwloc_topology_t t, hwloc_obj_type_t type, std::uint64_t& bytes, std::uint32_t& n) {
  n = count(t, type);
  hwloc_obj_t o = hwloc_get_obj_by_type(t, type, 0);
  bytes = o && o->attr ? o->attr->cache.size : 0;
}

// hwloc passes /proc/cpuinfo's model through, trailing padding included.
std::string trimmed(const char* s) {
  std::string out(s);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  return out;
}

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.0f MiB", double(b) / double(1ull << 20));
  else
    std::snprintf(buf, sizeof buf, "%.0f KiB", double(b) / 1024.0);
  return buf;
}

}  // namespace

CpuTopology detect_cpu_topology() {
  Topology topo;
  hwloc_topology_t t = topo.get();
  CpuTopology out;
  out.packages = count(t, HWLOC_OBJ_PACKAGE);
  out.cores = count(t, HWLOC_OBJ_CORE);
  out.threads = count(t, HWLOC_OBJ_PU);
  if (out.cores == 0) out.cores = out.threads;  // some VMs expose PUs only
  cache(t, HWLOC_OBJ_L1CACHE, out.l1d_bytes, out.l1d_count);
  cache(t, HWLOC_OBJ_L2CACHE, out.l2_bytes, out.l2_count);
  cache(t, HWLOC_OBJ_L3CACHE, out.l3_bytes, out.l3_count);

  if (hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0)) {
    if (const char* m = hwloc_obj_get_info_by_name(pkg, "CPUModel")) out.model = trimmed(m);
    if (const char* v = hwloc_obj_get_info_by_name(pkg, "CPUVendor")) out.vendor = v;
  }
  hwloc_obj_t root = hwloc_get_root_obj(t);
  if (out.model.empty())
    if (const char* m = hwloc_obj_get_info_by_name(root, "CPUModel")) out.model = trimmed(m);
  out.total_memory = root->total_memory;

  const std::uint32_t nodes = count(t, HWLOC_OBJ_NUMANODE);
  for (std::uint32_t i = 0; i < nodes; ++i) {
    hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
    NumaNode node;
    node.index = n->os_index;
    node.memory = n->attr ? n->attr->numanode.local_memory : 0;
    const int c = hwloc_get_nbobjs_inside_cpuset_by_type(t, n->cpuset, HWLOC_OBJ_CORE);
    node.cores = c > 0 ? static_cast<std::uint32_t>(c) : 0;
    out.numa_nodes.push_back(node);
  }
  if (out.total_memory == 0)
    for (const auto& n : out.numa_nodes) out.total_memory += n.memory;
  return out;
}

std::string describe(const CpuTopology& t) {
  std::string s = std::to_string(t.cores) + " cores / " + std::to_string(t.threads) + " threads";
  if (t.l1d_bytes) s += ", L1d " + human_bytes(t.l1d_bytes);
  if (t.l2_bytes) s += ", L2 " + human_bytes(t.l2_bytes);
  if (t.l3_bytes) s += ", L3 " + human_bytes(t.l3_bytes);
  s += ", " + std::to_string(t.numa_nodes.size()) + " NUMA node" +
       (t.numa_nodes.size() == 1 ? "" : "s");
  s += ", " + human_bytes(t.total_memory);
  return s;
}

}  // namespace kwaai::calibration
