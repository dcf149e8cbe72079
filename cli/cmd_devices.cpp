// `kwaainet devices [--json]`: every Vulkan device with the features and limits the kernels
// use, plus the CPU from hwloc. Without Vulkan (no loader, no driver) it still succeeds and
// lists the CPU with a note, so operators can tell "no GPU" from "broken install".
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "calibration/topology.hpp"
#include "cli/commands.hpp"
#include "engine/cpu/cpu_backend.hpp"
#include "kernels/kernel_table.hpp"
#include "runtime/context.hpp"

namespace kwaai::cli {
namespace {

using nlohmann::json;

std::vector<std::string> subgroup_ops(std::uint32_t ops) {
  static const std::pair<std::uint32_t, const char*> kNames[] = {
      {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
      {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
      {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
      {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative"},
      {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
      {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"}};
  std::vector<std::string> out;
  for (const auto& [bit, name] : kNames)
    if (ops & bit) out.emplace_back(name);
  return out;
}

json device_json(const runtime::DeviceCaps& c) {
  json heaps = json::array();
  for (const auto& h : c.heaps)
    heaps.push_back({{"size", h.size}, {"device_local", h.device_local}});
  json types = json::array();
  for (const auto& t : c.memory_types)
    types.push_back({{"heap", t.heap_index},
                     {"device_local", t.device_local},
                     {"host_visible", t.host_visible},
                     {"host_coherent", t.host_coherent},
                     {"host_cached", t.host_cached}});
  std::size_t usable = 0;
  const auto table = kernels::all_kernels();
  for (const auto& k : table)
    if ((k.features & ~c.kernel_features()) == 0) ++usable;
  json kernel_features = json::array();
  for (std::uint32_t bit = 1; bit <= kernels::kInt64; bit <<= 1)
    if (c.kernel_features() & bit)
      kernel_features.push_back(std::string(kernels::feature_name(kernels::Feature(bit))));
  return {
      {"index", c.index},
      {"name", c.name},
      {"type", runtime::to_string(c.type)},
      {"vendor_id", c.vendor_id},
      {"vendor", c.vendor()},
      {"device_id", c.device_id},
      {"driver_name", c.driver_name},
      {"driver_info", c.driver_info},
      {"driver_version", c.driver_version},
      {"api_version", c.api_version_string()},
      {"memory_heaps", heaps},
      {"memory_types", types},
      {"device_local_bytes", c.device_local_bytes()},
      {"features",
       {{"shader_float16", c.shader_float16},
        {"shader_int8", c.shader_int8},
        {"shader_int16", c.shader_int16},
        {"shader_int64", c.shader_int64},
        {"storage_buffer_16bit", c.storage_buffer_16bit},
        {"storage_buffer_8bit", c.storage_buffer_8bit}}},
      {"subgroup",
       {{"size", c.subgroup_size},
        {"min_size", c.min_subgroup_size},
        {"max_size", c.max_subgroup_size},
        {"in_compute", c.subgroup_in_compute()},
        {"operations", subgroup_ops(c.subgroup_operations)}}},
      {"limits",
       {{"max_storage_buffer_range", c.max_storage_buffer_range},
        {"max_memory_allocation_size", c.max_memory_allocation_size},
        {"max_buffer_size", c.max_buffer_size},
        {"max_compute_work_group_count",
         {c.max_compute_work_group_count[0], c.max_compute_work_group_count[1],
          c.max_compute_work_group_count[2]}},
        {"max_compute_work_group_size",
         {c.max_compute_work_group_size[0], c.max_compute_work_group_size[1],
          c.max_compute_work_group_size[2]}},
        {"max_compute_work_group_invocations", c.max_compute_work_group_invocations},
        {"max_compute_shared_memory_size", c.max_compute_shared_memory_size},
        {"max_push_constants_size", c.max_push_constants_size},
        {"max_storage_buffers_per_stage", c.max_storage_buffers_per_stage},
        {"min_storage_buffer_offset_alignment", c.min_storage_buffer_offset_alignment},
        {"timestamp_period_ns", c.timestamp_period_ns},
        {"timestamps", c.timestamps_supported},
        {"timestamp_valid_bits", c.timestamp_valid_bits}}},
      {"quirks",
       {{"cpu_device", c.is_cpu_device},
        {"lavapipe", c.is_lavapipe},
        {"portability_subset", c.portability_subset}}},
      {"kernel_features", kernel_features},
      {"kernels_usable", usable},
      {"kernels_total", table.size()},
  };
}

json cpu_json(const calibration::CpuTopology& t) {
  json numa = json::array();
  for (const auto& n : t.numa_nodes)
    numa.push_back({{"index", n.index}, {"memory", n.memory}, {"cores", n.cores}});
  return {{"model", t.model},
          {"vendor", t.vendor},
          {"packages", t.packages},
          {"cores", t.cores},
          {"threads", t.threads},
          {"caches",
           {{"l1d", {{"size", t.l1d_bytes}, {"count", t.l1d_count}}},
            {"l2", {{"size", t.l2_bytes}, {"count", t.l2_count}}},
            {"l3", {{"size", t.l3_bytes}, {"count", t.l3_count}}}}},
          {"numa_nodes", numa},
          {"total_memory", t.total_memory}};
}

std::string mib(std::uint64_t b) {
  return fmt::format("{:.0f} MiB", double(b) / (1 << 20));
}

void print_text(const std::vector<runtime::DeviceCaps>& devs, const std::string& vk_note,
                const std::optional<calibration::CpuTopology>& cpu, const std::string& cpu_note) {
  std::cout << "CPU\n";
  if (cpu) {
    std::cout << fmt::format("  {} ({})\n  {}\n", cpu->model.empty() ? "unknown model" : cpu->model,
                             cpu->vendor, calibration::describe(*cpu));
  } else {
    std::cout << "  unknown: " << cpu_note << "\n";
  }
  const engine::CpuBackendInfo cb = engine::cpu_backend_info();
  std::string runnable;
  for (const auto& n : cb.runnable) runnable += (runnable.empty() ? "" : ", ") + n;
  std::cout << fmt::format(
      "  CPU backend: kernels {} (runnable here: {}); OpenBLAS core {} (f32 weights "
      "only)\n",
      cb.kernels, runnable, cb.openblas_core);
  std::cout << "\nVulkan devices\n";
  if (devs.empty()) std::cout << "  none: " << vk_note << " (the CPU backend is used)\n";
  for (const auto& c : devs) {
    const json j = device_json(c);
    std::cout << fmt::format("  [{}] {} ({}, vendor {}, id 0x{:04x})\n", c.index, c.name,
                             runtime::to_string(c.type), c.vendor(), c.device_id);
    std::cout << fmt::format("      driver {} {}, Vulkan {}\n", c.driver_name, c.driver_info,
                             c.api_version_string());
    for (std::size_t h = 0; h < c.heaps.size(); ++h)
      std::cout << fmt::format("      heap {}: {}{}\n", h, mib(c.heaps[h].size),
                               c.heaps[h].device_local ? " device-local" : "");
    std::cout << fmt::format(
        "      fp16 {} int8 {} storage16 {} storage8 {} subgroup {} (size {}, {})\n",
        c.shader_float16, c.shader_int8, c.storage_buffer_16bit, c.storage_buffer_8bit,
        c.subgroup_in_compute(), c.subgroup_size,
        fmt::join(subgroup_ops(c.subgroup_operations), ","));
    std::cout << fmt::format(
        "      maxStorageBufferRange {}  maxMemoryAllocationSize {}  maxBufferSize {}\n",
        mib(c.max_storage_buffer_range), mib(c.max_memory_allocation_size),
        c.max_buffer_size ? mib(c.max_buffer_size) : std::string("n/a"));
    std::cout << fmt::format(
        "      workgroup count {}x{}x{} size {}x{}x{} invocations {} shared {} KiB push {} B "
        "storage buffers/stage {}\n",
        c.max_compute_work_group_count[0], c.max_compute_work_group_count[1],
        c.max_compute_work_group_count[2], c.max_compute_work_group_size[0],
        c.max_compute_work_group_size[1], c.max_compute_work_group_size[2],
        c.max_compute_work_group_invocations, c.max_compute_shared_memory_size / 1024,
        c.max_push_constants_size, c.max_storage_buffers_per_stage);
    std::cout << fmt::format(
        "      minStorageBufferOffsetAlignment {}  timestamps {} ({} ns/tick)  kernels {}/{}{}\n",
        c.min_storage_buffer_offset_alignment, c.timestamps_supported, c.timestamp_period_ns,
        j["kernels_usable"].get<std::size_t>(), j["kernels_total"].get<std::size_t>(),
        c.is_cpu_device ? "  [CPU device]" : "");
  }
}

void run_devices(bool as_json) {
  std::vector<runtime::DeviceCaps> devs;
  std::string vk_note;
  try {
    devs = runtime::Context::enumerate();
  } catch (const runtime::NoVulkanDevice& e) {
    vk_note = e.what();
  } catch (const std::exception& e) {
    vk_note = std::string("Vulkan enumeration failed: ") + e.what();
  }
  std::optional<calibration::CpuTopology> cpu;
  std::string cpu_note;
  try {
    cpu = calibration::detect_cpu_topology();
  } catch (const std::exception& e) {
    cpu_note = e.what();
  }

  if (!as_json) {
    print_text(devs, vk_note, cpu, cpu_note);
    return;
  }
  json doc;
  doc["cpu"] = cpu ? cpu_json(*cpu) : json(nullptr);
  if (!cpu) doc["cpu_note"] = cpu_note;
  const engine::CpuBackendInfo cb = engine::cpu_backend_info();
  doc["cpu_backend"] = {
      {"kernels", cb.kernels}, {"runnable", cb.runnable}, {"openblas_core", cb.openblas_core}};
  doc["vulkan"] = json::array();
  for (const auto& c : devs) doc["vulkan"].push_back(device_json(c));
  if (devs.empty()) doc["vulkan_note"] = vk_note;
  std::cout << doc.dump(2) << "\n";
}

}  // namespace

void register_devices(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("devices", "List Vulkan devices and the CPU topology");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "Print one JSON document on stdout");
  cmd->callback([as_json] { run_devices(*as_json); });
}

}  // namespace kwaai::cli
