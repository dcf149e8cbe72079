// Runs swarm.sh with the built kwaainet: a bootstrap node and two `kwaainet serve` processes
// splitting stories260K, then `kwaainet client generate --json` through them; the greedy ids
// from BOS must equal the reference and the route must name both servers.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/engine/llama/llama_test_util.hpp"

namespace {

namespace test = kwaai::engine::llama::test;

std::string run(const std::string& cmd, int& status) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return out;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  status = pclose(p.release());
  return out;
}

std::string last_json_line(const std::string& s) {
  std::istringstream in(s);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty() && line.front() == '{') last = line;
  return last;
}

TEST(ClientSwarmScript, TwoServeProcessesGiveTheReferenceGreedyIds) {
  int status = -1;
  const std::string cmd = std::string("KWAAINET=") + KWAAINET_BIN +
                          " SWARM_TOKENS=128 SWARM_CLIENT_FLAGS=--json bash " + KWAAI_SOURCE_DIR +
                          "/swarm.sh 2>&1";
  const std::string out = run(cmd, status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(last_json_line(out));
  EXPECT_EQ(j.at("ids").get<std::vector<std::int32_t>>(), test::Reference().i32("greedy_from_bos"));
  const auto& route = j.at("route");
  ASSERT_EQ(route.size(), 2u) << out;
  EXPECT_EQ(route[0].at("start"), 0);
  EXPECT_EQ(route[0].at("end"), 3);
  EXPECT_EQ(route[1].at("start"), 3);
  EXPECT_EQ(route[1].at("end"), 5);
  EXPECT_NE(route[0].at("peer"), route[1].at("peer"));
  EXPECT_GT(j.at("tokens_per_s").get<double>(), 0.0);
  // The human-readable route went to stderr as well.
  EXPECT_NE(out.find("blocks [3:5) served by"), std::string::npos) << out;
}

}  // namespace
