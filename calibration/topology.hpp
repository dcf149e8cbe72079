// What the machine's CPU side looks like, from hwloc: packages, cores, hardware threads,
// caches, NUMA nodes, memory and the CPU model. Used to size the CPU backend's thread pool,
// to pick cache-friendly tile sizes, and printed by `kwaainet devices`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kwaai::calibration {

struct NumaNode {
  std::uint32_t index = 0;   // OS index
  std::uint64_t memory = 0;  // local memory in bytes (0 if hwloc does not know)
  std::uint32_t cores = 0;   // cores whose CPUs are local to this node
};

struct CpuTopology {
  std::string model;   // "AMD EPYC 9R14 96-Core Processor"
  std::string vendor;  // "AuthenticAMD"
  std::uint32_t packages = 0;
  std::uint32_t cores = 0;    // physical cores (visible to this process)
  std::uint32_t threads = 0;  // hardware threads (PUs) visible to this process
  // Cache sizes in bytes of the first cache of each level (0 when absent), and how many
  // instances of each level exist (e.g. one L2 per core).
  std::uint64_t l1d_bytes = 0, l2_bytes = 0, l3_bytes = 0;
  std::uint32_t l1d_count = 0, l2_count = 0, l3_count = 0;
  std::uint64_t total_memory = 0;  // bytes, all NUMA nodes
  std::vector<NumaNode> numa_nodes;
};

// Discovers the topology of this machine. Throws std::runtime_error (with the hwloc call that
// failed) when hwloc cannot load a topology.
CpuTopology detect_cpu_topology();

// "8 cores / 16 threads, L1d 32 KiB, L2 1 MiB, L3 32 MiB, 1 NUMA node, 24.0 GiB".
std::string describe(const CpuTopology& t);

}  // namespace kwaai::calibration
