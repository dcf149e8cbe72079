// Turns a device spec ("cpu", "vulkan", "vulkan:N", "auto") into a backend.
#include <spdlog/spdlog.h>

#include <charconv>
#include <stdexcept>
#include <string>

#include "engine/core/backend.hpp"
#include "engine/cpu/cpu_backend.hpp"
#include "engine/vulkan/vulkan_backend.hpp"

namespace kwaai::engine {

namespace {

int parse_device_index(const std::string& spec, std::string_view digits) {
  int index = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (ec != std::errc{} || end != digits.data() + digits.size() || index < 0)
    throw std::invalid_argument("bad device spec '" + spec + "': expected vulkan:<index>");
  return index;
}

}  // namespace

std::unique_ptr<Backend> make_backend(const std::string& spec) {
  if (spec == "cpu") return make_cpu_backend();
  // "cpu:avx2" etc.: the CPU backend on one kernel table (tests and benchmarks compare them).
  if (spec.rfind("cpu:", 0) == 0) return make_cpu_backend(0, spec.substr(4));
  if (spec == "vulkan") return make_vulkan_backend(0);
  if (spec.rfind("vulkan:", 0) == 0)
    return make_vulkan_backend(parse_device_index(spec, std::string_view(spec).substr(7)));
  if (spec == "auto" || spec.empty()) {
    try {
      return make_vulkan_backend(0);
    } catch (const std::exception& e) {
      spdlog::info("no usable Vulkan device ({}); using the CPU backend", e.what());
      return make_cpu_backend();
    }
  }
  throw std::invalid_argument("unknown device spec '" + spec +
                              "' (expected cpu, cpu:<kernels>, vulkan, vulkan:N or auto)");
}

}  // namespace kwaai::engine
