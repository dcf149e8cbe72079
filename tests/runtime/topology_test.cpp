// hwloc topology of the machine running the test, checked against what Linux reports.
#include "calibration/topology.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

namespace kwaai::calibration {
namespace {

TEST(Topology, MatchesTheOperatingSystemsView) {
  const CpuTopology t = detect_cpu_topology();
  EXPECT_GE(t.packages, 1u);
  EXPECT_GE(t.cores, 1u);
  EXPECT_GE(t.threads, t.cores);
  // hwloc sees the CPUs this process may run on; the OS count of online CPUs bounds it.
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_LE(long(t.threads), online);
  EXPECT_GE(t.numa_nodes.size(), 1u);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const double os_mem = double(pages) * double(page);
  // hwloc reads the NUMA nodes' meminfo, which sandboxes may report below the kernel's
  // total (seen: node0 8 GiB of 24 GiB), so only bound it from above.
  EXPECT_GT(t.total_memory, 0u);
  EXPECT_LT(double(t.total_memory), 1.1 * os_mem);
  std::uint64_t node_sum = 0;
  for (const auto& n : t.numa_nodes) node_sum += n.memory;
  EXPECT_EQ(node_sum, t.total_memory);
  EXPECT_FALSE(t.model.empty());
  if (t.l2_bytes && t.l1d_bytes) {
    EXPECT_GT(t.l2_bytes, t.l1d_bytes);
  }
  if (t.l3_bytes && t.l2_bytes) {
    EXPECT_GE(t.l3_bytes, t.l2_bytes);
  }
  const std::string d = describe(t);
  EXPECT_NE(d.find("cores"), std::string::npos);
  EXPECT_NE(d.find("NUMA"), std::string::npos);
}

}  // namespace
}  // namespace kwaai::calibration
