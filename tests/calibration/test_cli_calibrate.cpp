// End to end: `kwaainet calibrate --synthetic llama-2-7b --device cpu --quick --json` with a
// two-layer model, in a private XDG_CACHE_HOME; checks the JSON fields against Petals' rules and
// that the saved profile loads back.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <unistd.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "calibration/petals_rules.hpp"
#include "calibration/profile.hpp"

namespace kwaai::calibration {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int status = -1;
  std::string out;
};

CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
    r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class CalibrateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = fs::temp_directory_path() / ("kwaai-calib-cli-" + std::to_string(::getpid()) + "-" +
                                          std::to_string(std::random_device{}()));
    fs::create_directories(cache_);
  }
  void TearDown() override { fs::remove_all(cache_); }
  std::string env() const { return "XDG_CACHE_HOME='" + cache_.string() + "' KWAAI_DEVICE= "; }
  fs::path cache_;
};

TEST_F(CalibrateCli, SyntheticLlama2_7bQuickJsonHasPetalsFields) {
  const CommandResult r = run_command(
      env() +
      "'" KWAAINET_BIN
      "' --log-level warn calibrate --synthetic llama-2-7b --device cpu --quick --json --layers 2");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);  // stdout is exactly one JSON document
  for (const char* k : {"num_blocks", "block_bytes", "cache_bytes_per_block", "compute_rps",
                        "network_rps", "throughput", "forward_rps", "inference_rps"})
    ASSERT_TRUE(j.contains(k)) << k << " missing in " << r.out;

  // Llama-2-7B f16: Petals' block and cache sizes (see test_petals_rules.cpp).
  EXPECT_EQ(j["block_bytes"].get<std::uint64_t>(), 408814387u);
  EXPECT_EQ(j["cache_bytes_per_block"].get<std::uint64_t>(), 67108864u);
  EXPECT_EQ(j["attn_cache_tokens"].get<std::int64_t>(), 4096);
  EXPECT_EQ(j["memory_source"], "hwloc RAM");
  // num_blocks is Petals' rule on this machine's RAM, capped by --layers 2.
  const BlockShape s{4096, 32, 32, 2, 202383360};
  const auto expect =
      choose_num_blocks(s, engine::DType::F16, j["memory_bytes"].get<std::uint64_t>());
  EXPECT_EQ(j["num_blocks"].get<std::int64_t>(), expect.num_blocks);
  EXPECT_EQ(j["num_layers"].get<std::int64_t>(), 2);

  const double fwd = j["forward_rps"].get<double>(), inf = j["inference_rps"].get<double>();
  EXPECT_GT(fwd, 0);
  EXPECT_GT(inf, 0);
  EXPECT_DOUBLE_EQ(j["compute_rps"].get<double>(), fwd);
  EXPECT_DOUBLE_EQ(j["network_rps"].get<double>(), 1525.87890625);  // 100e6 / (4096 * 16)
  EXPECT_EQ(j["network_source"], "petals-default-100mbit");
  EXPECT_DOUBLE_EQ(j["throughput"].get<double>(),
                   announced_throughput(fwd, 1525.87890625, expect.num_blocks));

  // The profile was saved under XDG_CACHE_HOME and loads back with the same numbers.
  const fs::path dir = cache_ / "kwaainet" / "calibration";
  ASSERT_TRUE(j.contains("profile_path"));
  EXPECT_EQ(fs::path(j["profile_path"].get<std::string>()).parent_path(), dir);
  const auto p = load_profile(dir, j["key"].get<std::string>());
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(p->throughput, j["throughput"].get<double>());
  EXPECT_EQ(p->model, "llama-2-7b");
  EXPECT_EQ(p->device, "cpu");
}

TEST_F(CalibrateCli, RejectsBadArguments) {
  EXPECT_NE(run_command(env() + "'" KWAAINET_BIN "' calibrate --device cpu --quick 2>&1").status,
            0);
  EXPECT_NE(run_command(env() + "'" KWAAINET_BIN
                                "' calibrate --synthetic llama-2-7b --quant nf4 --device cpu 2>&1")
                .status,
            0);
  EXPECT_NE(run_command(env() + "'" KWAAINET_BIN
                                "' calibrate --synthetic no-such-model --device cpu --quick 2>&1")
                .status,
            0);
  EXPECT_FALSE(fs::exists(cache_ / "kwaainet" / "calibration"));
}

}  // namespace
}  // namespace kwaai::calibration
