// The ops mode of `kwaainet bench` (--ops): decode mat-vec per weight dtype and a prefill
// matmul on each device side by side, against each device's measured copy bandwidth.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kwaai::cli {

struct BenchOpsOptions {
  std::vector<std::string> devices;  // "cpu", "vulkan:0", ...
  bool quick = false;                // smaller buffers, fewer repetitions
  bool json = false;                 // one JSON document on stdout instead of a table
};

// Prints the table (or JSON) and returns the JSON object {"devices": [...], "rows": [...]}.
nlohmann::json run_bench_ops(const BenchOpsOptions& opt);

}  // namespace kwaai::cli
