// Runs the built `kwaainet generate` on stories260K and checks its JSON summary against the
// reference greedy ids.
#include <gtest/gtest.h>

#include <map>

#include <unistd.h>
#include <array>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/engine/llama/llama_test_util.hpp"

namespace kwaai::engine::llama {
namespace {

struct CliRun {
  int status = -1;
  std::string out;
  std::string err;  // stderr, when run() is asked for it
};

CliRun run(const std::string& args, const std::string& env = "", bool want_stderr = false) {
  const std::string err_file =
      ::testing::TempDir() + "kwaainet_cli_" + std::to_string(::getpid()) + ".err";
  const std::string cmd = env + " " + std::string(KWAAINET_BIN) + " " + args + " 2>" +
                          (want_stderr ? err_file : std::string("/dev/null"));
  CliRun r;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return r;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) r.out.append(buf.data(), n);
  r.status = pclose(p.release());
  if (want_stderr) {
    std::ifstream f(err_file);
    r.err.assign(std::istreambuf_iterator<char>(f), {});
    std::remove(err_file.c_str());
  }
  return r;
}

std::string last_line(const std::string& s) {
  std::istringstream in(s);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

TEST(KwaainetGenerate, GreedyIdsFromBosMatchTheReference) {
  const CliRun r = run("generate --model " + test::stories_dir() +
                       " --prompt-ids 1 --max-new-tokens 128 --device cpu --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(last_line(r.out));
  EXPECT_EQ(j.at("ids").get<std::vector<std::int32_t>>(), test::Reference().i32("greedy_from_bos"));
  EXPECT_EQ(j.at("prompt_tokens").get<int>(), 1);
  EXPECT_GT(j.at("tokens_per_s").get<double>(), 0.0);
}

// Check mode on the Vulkan device this machine has (lavapipe in CI): every op of a real
// generation rerun on the CPU and compared, and the run still ends with the reference ids.
TEST(KwaainetGenerate, VulkanCheckModeRerunsEveryOpOnTheCpuAndAgrees) {
  const CliRun probe = run("devices --json");
  if (probe.out.find("\"vulkan\": []") != std::string::npos ||
      probe.out.find("vulkan_note") != std::string::npos)
    GTEST_SKIP() << "no Vulkan device";
  const CliRun r = run("generate --model " + test::stories_dir() +
                           " --prompt-ids 1 --max-new-tokens 12 --device vulkan --json",
                       "KWAAI_VK_CHECK=1", true);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("check mode"), std::string::npos) << "check mode was not on:\n" << r.err;
  const auto j = nlohmann::json::parse(last_line(r.out));
  const auto want = test::Reference().i32("greedy_from_bos");
  EXPECT_EQ(j.at("ids").get<std::vector<std::int32_t>>(),
            std::vector<std::int32_t>(want.begin(), want.begin() + 12));
}

// --device auto never takes a CPU-type Vulkan device (lavapipe) over the CPU backend.
TEST(KwaainetGenerate, AutoDeviceSkipsCpuTypeVulkanDevices) {
  const CliRun devs = run("devices --json");
  const bool only_cpu_type = devs.out.find("\"cpu_device\": false") == std::string::npos;
  const CliRun r = run("generate --model " + test::stories_dir() +
                       " --prompt-ids 1 --max-new-tokens 4 --device auto --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(last_line(r.out));
  if (only_cpu_type)
    EXPECT_EQ(j.at("device").get<std::string>(), "cpu") << r.out;
  else
    EXPECT_NE(j.at("device").get<std::string>(), "cpu") << r.out;
}

TEST(KwaainetGenerate, SeededSamplingIsReproducibleAndBadInputFails) {
  const std::string args = "generate --model " + test::stories_dir() +
                           " --prompt-ids 1,461 --max-new-tokens 24 --temperature 0.9 --top-k "
                           "40 --top-p 0.95 --seed 7 --device cpu --json";
  const CliRun a = run(args), b = run(args);
  ASSERT_EQ(a.status, 0);
  const auto ja = nlohmann::json::parse(last_line(a.out));
  EXPECT_EQ(ja.at("ids"), nlohmann::json::parse(last_line(b.out)).at("ids"));
  EXPECT_EQ(ja.at("ids").size(), 24u);
  EXPECT_NE(
      run("generate --model " + test::stories_dir() + " --prompt-ids 1,x --device cpu").status, 0);
  EXPECT_NE(
      run("generate --model " + test::stories_dir() + " --prompt-ids 9999 --device cpu").status, 0);
  EXPECT_NE(run("generate --model /nonexistent --prompt-ids 1 --device cpu").status, 0);
}

TEST(KwaainetBench, SyntheticTokensPerSecondJsonHasAPrefillAndADecodeRowPerDevice) {
  const CliRun r = run(
      "bench --synthetic stories260k --layers 3 --devices cpu --prompt-len 8 --gen-len 4 --batch 2 "
      "--quant q8_0 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(last_line(r.out));
  ASSERT_EQ(j.at("rows").size(), 2u);
  for (const auto& row : j.at("rows")) {
    EXPECT_EQ(row.at("device"), "cpu");
    EXPECT_GT(row.at("tokens_per_s").get<double>(), 0.0);
    EXPECT_GT(row.at("roofline_fraction").get<double>(), 0.0);
    EXPECT_EQ(row.at("layers").get<int>(), 3);
  }
  EXPECT_EQ(j["rows"][0].at("phase"), "prefill");
  EXPECT_EQ(j["rows"][0].at("tokens").get<int>(), 16);
  EXPECT_EQ(j["rows"][1].at("phase"), "decode");
  EXPECT_EQ(j["rows"][1].at("tokens").get<int>(), 8);
  EXPECT_NE(run("bench --synthetic llama-9-1b --devices cpu").status, 0);
}

TEST(KwaainetBench, ProfileGivesEachPhaseItsTimePerOpKind) {
  const CliRun r =
      run("bench --synthetic stories260k --layers 2 --devices cpu --prompt-len 8 --gen-len 3 "
          "--quant q8_0 --profile --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(last_line(r.out));
  ASSERT_EQ(j.at("rows").size(), 2u);
  for (const auto& row : j.at("rows")) {
    SCOPED_TRACE(row.at("phase").get<std::string>());
    const auto& prof = row.at("profile");
    std::map<std::string, std::int64_t> calls;
    double share = 0;
    std::int64_t matmuls = 0, q8_0 = 0;  // q8_0, plus any matrix --quant leaves in f16
    for (const auto& p : prof) {
      const auto op = p.at("op").get<std::string>();
      calls[op] = p.at("calls").get<std::int64_t>();
      matmuls += calls[op] * test::products_of(op);
      if (op.starts_with("matmul") && op.find(" q8_0") != std::string::npos) q8_0 += calls[op];
      share += p.at("share").get<double>();
    }
    // The profiled run is the whole model: 7 projections and 2 norms per block, plus the final
    // norm and the LM head once per step; the prefill phase is one forward, decode 3 steps.
    const std::int64_t steps = row.at("phase") == "prefill" ? 1 : 3;
    EXPECT_GT(q8_0, 0);
    EXPECT_EQ(matmuls, (7 * 2 + 1) * steps);
    EXPECT_EQ(calls["attention f32"], 2 * steps);
    EXPECT_EQ(calls["rms_norm f32"], (2 * 2 + 1) * steps);
    EXPECT_EQ(calls["embedding q8_0"], steps);  // stories260K's tied table, quantized
    EXPECT_GT(share, 0.0);
    EXPECT_LE(share, 1.0 + 1e-9);  // ops run inside the timed phase
  }
}

// `kwaainet tokenize` on the hand-made SentencePiece-style tokenizer of the tokenizer tests
// (tests/engine/model/data/sp_tokenizer.json: "hello world" is ▁hello ▁world = 21 26, BOS 1).
TEST(KwaainetTokenize, PrintsIdsOrJsonAndRefusesBadFlags) {
  const std::string tok = std::string(KWAAI_SOURCE_DIR) + "/tests/engine/model/data/sp_tokenizer.json";
  const CliRun plain = run("tokenize --model " + tok + " --text 'hello world'");
  EXPECT_EQ(plain.status, 0);
  EXPECT_EQ(last_line(plain.out), "21,26");
  const CliRun bos = run("tokenize --model " + tok + " --text 'hello world' --add-bos --json");
  ASSERT_EQ(bos.status, 0);
  const auto j = nlohmann::json::parse(last_line(bos.out));
  EXPECT_EQ(j["ids"], nlohmann::json::array({1, 21, 26}));
  EXPECT_EQ(j["pieces"][1], "\u2581hello");
  EXPECT_NE(run("tokenize --model " + tok).status, 0) << "no text";
  EXPECT_NE(run("tokenize --model " + tok + " --text a --file " + tok).status, 0) << "both";
  EXPECT_NE(run("tokenize --model /nonexistent --text a").status, 0);
  const CliRun not_json = run("tokenize --model /etc/hostname --text a", "", true);
  EXPECT_NE(not_json.status, 0);
}

}  // namespace
}  // namespace kwaai::engine::llama
