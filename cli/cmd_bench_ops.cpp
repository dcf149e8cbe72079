// `kwaainet bench --ops`: see bench_ops.hpp. The shapes and timing rules are shared with
// bench/ops_bench.cpp through bench/op_cases.hpp.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "bench/op_cases.hpp"
#include "cli/bench_ops.hpp"
#include "engine/core/backend.hpp"

namespace kwaai::cli {

namespace {

using engine::DType;
using nlohmann::json;

struct Row {
  std::string device, op;
  double ms = 0, gbs = 0, gflops = 0;
  double copy_fraction = -1;  // decode rows only
};

void measure_device(const std::string& spec, const BenchOpsOptions& opt, std::vector<Row>& rows,
                    json& devices) {
  auto be = engine::make_backend(spec);
  devices.push_back({{"device", be->name()}, {"description", be->description()}});
  spdlog::info("bench --ops on {} ({})", be->name(), be->description());
  const int warmup = opt.quick ? 1 : 3, reps = opt.quick ? 5 : 20;

  auto record = [&](const bench::OpCase& c, double copy_gbs) {
    const double s = bench::time_median(*be, c, warmup, reps);
    Row r{be->name(), c.name, s * 1e3, c.bytes / s / 1e9, c.flops / s / 1e9, -1};
    if (copy_gbs > 0) r.copy_fraction = r.gbs / copy_gbs;
    spdlog::info("  {:<40} {:8.3f} ms {:8.2f} GB/s", r.op, r.ms, r.gbs);
    rows.push_back(r);
    return r;
  };

  const std::size_t copy_bytes = opt.quick ? (64u << 20) : (256u << 20);
  const double copy_gbs = record(bench::make_copy_case(*be, copy_bytes), 0).gbs;
  for (DType wt : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
    record(bench::make_matmul_case(*be, wt, 1, 14336, 4096), copy_gbs);
  const std::int64_t prefill_m = opt.quick ? 128 : 512;
  record(bench::make_matmul_case(*be, DType::F32, prefill_m, 4096, 4096), 0);
  if (!opt.quick) record(bench::make_matmul_case(*be, DType::Q8_0, prefill_m, 4096, 4096), 0);
}

}  // namespace

json run_bench_ops(const BenchOpsOptions& opt) {
  std::vector<Row> rows;
  json devices = json::array();
  for (const auto& spec : opt.devices) measure_device(spec, opt, rows, devices);

  json out{{"devices", devices}, {"rows", json::array()}};
  for (const auto& r : rows) {
    json j{{"device", r.device}, {"op", r.op}, {"ms", r.ms}, {"gb_per_s", r.gbs}};
    if (r.gflops > 0) j["gflop_per_s"] = r.gflops;
    if (r.copy_fraction >= 0) j["fraction_of_copy_bandwidth"] = r.copy_fraction;
    out["rows"].push_back(j);
  }
  if (opt.json) {
    std::cout << out.dump(2) << "\n";
    return out;
  }
  std::cout << fmt::format("{:<12} {:<40} {:>10} {:>9} {:>10} {:>8}\n", "device", "op", "ms",
                           "GB/s", "GFLOP/s", "of copy");
  for (const auto& r : rows)
    std::cout << fmt::format(
        "{:<12} {:<40} {:>10.3f} {:>9.2f} {:>10} {:>8}\n", r.device, r.op, r.ms, r.gbs,
        r.gflops > 0 ? fmt::format("{:.1f}", r.gflops) : "-",
        r.copy_fraction >= 0 ? fmt::format("{:.0f}%", 100.0 * r.copy_fraction) : "-");
  std::cout << "copy GB/s counts bytes read + written; decode rows compare their bytes moved "
               "with it.\n";
  return out;
}

}  // namespace kwaai::cli
