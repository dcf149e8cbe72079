// Turns a device spec ("cpu", "vulkan", "vulkan:N", "auto") into a backend.
#include <spdlog/spdlog.h>

#include <charconv>
#include <stdexcept>
#include <string>

#include "engine/check_backend.hpp"
#include "engine/core/backend.hpp"
#include "engine/cpu/cpu_backend.hpp"
#include "engine/vulkan/vulkan_backend.hpp"
#include "runtime/context.hpp"

namespace kwaai::engine {

namespace {

int parse_device_index(const std::string& spec, std::string_view digits) {
  int index = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (ec != std::errc{} || end != digits.data() + digits.size() || index < 0)
    throw std::invalid_argument("bad device spec '" + spec + "': expected vulkan:<index>");
  return index;
}

// A Vulkan backend, wrapped in check mode when KWAAI_VK_CHECK=1 (engine/check_backend.hpp).
std::unique_ptr<Backend> vulkan(int index) {
  auto be = make_vulkan_backend(index);
  const runtime::ContextOptions env = runtime::ContextOptions::from_environment();
  if (!env.check_ops) return be;
  CheckOptions co;
  if (env.check_tolerance > 0) co.tolerance = co.quantized_tolerance = env.check_tolerance;
  return make_checked_backend(std::move(be), make_cpu_backend(), co);
}

}  // namespace

std::unique_ptr<Backend> make_backend(const std::string& spec) {
  if (spec == "cpu") return make_cpu_backend();
  // "cpu:avx2" etc.: the CPU backend on one kernel table (tests and benchmarks compare them).
  if (spec.rfind("cpu:", 0) == 0) return make_cpu_backend(0, spec.substr(4));
  if (spec == "vulkan") return vulkan(0);
  if (spec.rfind("vulkan:", 0) == 0)
    return vulkan(parse_device_index(spec, std::string_view(spec).substr(7)));
  if (spec == "auto" || spec.empty()) {
    // A real GPU when there is one, never a CPU-type Vulkan device (lavapipe, SwiftShader):
    // that runs the same cores as the CPU backend, through a software rasterizer's compute
    // path, orders of magnitude slower (stories260K decode ~21 tok/s there, ~10k on the CPU).
    std::vector<runtime::DeviceCaps> devs;
    try {
      devs = runtime::Context::enumerate();
    } catch (const std::exception& e) {
      spdlog::info("no usable Vulkan device ({}); using the CPU backend", e.what());
      return make_cpu_backend();
    }
    std::string skipped;
    for (const auto& d : devs) {
      if (d.is_cpu_device) {
        skipped += (skipped.empty() ? "" : ", ") + d.name;
        continue;
      }
      try {
        return vulkan(static_cast<int>(d.index));
      } catch (const std::exception& e) {
        spdlog::warn("Vulkan device {} ({}) failed to start: {}", d.index, d.name, e.what());
      }
    }
    if (!skipped.empty())
      spdlog::info("auto: Vulkan device(s) {} are CPU-type; using the CPU backend", skipped);
    else
      spdlog::info("no usable Vulkan device; using the CPU backend");
    return make_cpu_backend();
  }
  throw std::invalid_argument("unknown device spec '" + spec +
                              "' (expected cpu, cpu:<kernels>, vulkan, vulkan:N or auto)");
}

}  // namespace kwaai::engine
