#include "tests/kernels/op_test_util.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace kwaai::test {

engine::Backend& backend_for(const std::string& spec) {
  // A Vulkan backend logs (spdlog) if saving its pipeline cache fails while it is destroyed at
  // exit, so spdlog's registry must outlive this cache: touching it first constructs it
  // first, and function statics are destroyed in reverse order of construction.
  static const bool log_first = (spdlog::default_logger_raw(), true);
  (void)log_first;
  static std::mutex m;
  static std::map<std::string, std::unique_ptr<engine::Backend>> cache;
  std::lock_guard lock(m);
  auto& slot = cache[spec];
  if (!slot) slot = engine::make_backend(spec);
  return *slot;
}

std::uint64_t fresh_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

engine::Tensor upload_as(engine::Backend& be, engine::DType dt, const engine::Shape& shape,
                         const std::vector<float>& values, std::vector<float>* decoded) {
  const auto n = static_cast<std::int64_t>(values.size());
  std::vector<std::byte> bytes(engine::dtype_bytes(dt, n));
  engine::from_f32(dt, values.data(), bytes.data(), n);
  auto t = be.alloc(dt, shape);
  be.upload(t, bytes);
  if (decoded) {
    decoded->resize(values.size());
    engine::to_f32(dt, bytes.data(), decoded->data(), n);
  }
  return t;
}

engine::Tensor poisoned(engine::Backend& be, engine::DType dt, const engine::Shape& shape) {
  auto t = be.alloc(dt, shape);
  std::vector<std::byte> junk(t.nbytes(), std::byte{0xff});
  be.upload(t, junk);
  return t;
}

::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                     double atol, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  std::ostringstream misses;
  std::size_t bad = 0;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double tol = atol + rtol * std::fabs(want[i]);
    if (!(err <= tol)) {  // NaN fails too
      if (bad < 5)
        misses << "\n  [" << i << "] got " << got[i] << " want " << want[i] << " (tol " << tol
               << ")";
      ++bad;
    }
    if (err > worst) worst = err;
  }
  if (bad)
    return ::testing::AssertionFailure()
           << bad << " of " << got.size() << " elements off" << misses.str();
  return ::testing::AssertionSuccess() << "max abs error " << worst;
}

std::string spec_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

}  // namespace kwaai::test
