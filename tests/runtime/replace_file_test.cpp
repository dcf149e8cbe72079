#include "runtime/replace_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kwaai::runtime {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::filesystem::path scratch_dir(const char* name) {
  auto d = std::filesystem::temp_directory_path() /
           (std::string("kwaai-") + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d;
}

TEST(ReplaceFile, CreatesDirectoriesReplacesTheFileAndLeavesNoTemporary) {
  const auto dir = scratch_dir("replace");
  const auto file = dir / "a" / "b.bin";
  replace_file(file, std::string("first\0bytes", 11));
  EXPECT_EQ(slurp(file), std::string("first\0bytes", 11));
  replace_file(file, "second");
  EXPECT_EQ(slurp(file), "second");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "a")) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "b.bin");
  }
  EXPECT_EQ(entries, 1);
  std::filesystem::remove_all(dir);
}

TEST(ReplaceFile, ConcurrentSaversEachLeaveAWholeFile) {
  // Every save has its own temporary, so the file is always one whole payload, never a mix.
  const auto dir = scratch_dir("replace-many");
  const auto file = dir / "f.bin";
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      const std::string payload(4096, static_cast<char>('a' + t));
      for (int i = 0; i < 20; ++i) replace_file(file, payload);
    });
  for (auto& t : ts) t.join();
  const std::string got = slurp(file);
  ASSERT_EQ(got.size(), 4096u);
  EXPECT_EQ(got, std::string(4096, got[0]));
  int entries = 0;  // and no temporary is left behind
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);
  std::filesystem::remove_all(dir);
}

TEST(ReplaceFile, AnImpossiblePathThrowsNamingIt) {
  const auto dir = scratch_dir("replace-bad");
  std::filesystem::create_directories(dir);
  const auto blocker = dir / "not-a-dir";
  std::ofstream(blocker) << "x";
  try {
    replace_file(blocker / "f.bin", "data");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not-a-dir"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kwaai::runtime
