// Messages from the Vulkan validation layer (warnings and errors of the validation and
// performance types). Shared, so a test can still read it after its Context is destroyed
// (object-leak reports arrive during device destruction).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace kwaai::runtime {

class ValidationLog {
 public:
  void add(std::string msg);
  std::size_t count() const { return count_.load(); }
  std::vector<std::string> messages() const;  // the first kKeep messages
  void clear();
  static constexpr std::size_t kKeep = 64;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace kwaai::runtime
