// The on-disk pipeline cache: written at exit, re-read at start, corrupt files ignored.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "tests/runtime/vulkan_fixture.hpp"

namespace kwaai::runtime {
namespace {

namespace fs = std::filesystem;

class PipelineCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kwaai-pcache-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(test::fresh_seed()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Creates a context using the cache dir, builds one pipeline, destroys the context.
  // Returns whether the cache was loaded at start.
  bool run_once(fs::path* file = nullptr) {
    ContextOptions o = test::test_options();
    o.pipeline_cache_dir = dir_;
    bool loaded = false;
    std::shared_ptr<const ValidationLog> log;
    {
      Context ctx = Context::create(o);
      log = ctx.validation_log();
      loaded = ctx.pipeline_cache_loaded();
      EXPECT_TRUE(ctx.pipeline_cache_file().has_value());
      if (file) *file = *ctx.pipeline_cache_file();
      (void)ctx.pipeline("scale_f32");
    }
    test::expect_no_validation_messages(*log);
    return loaded;
  }

  fs::path dir_;
};

TEST_F(PipelineCacheTest, WrittenAtExitAndReadBackAtStart) {
  fs::path file;
  EXPECT_FALSE(run_once(&file));
  ASSERT_TRUE(fs::exists(file));
  // Our 24-byte header + at least Vulkan's 32-byte cache header (lavapipe stores no more).
  EXPECT_GE(fs::file_size(file), 24u + 32u);
  EXPECT_EQ(file.parent_path(), dir_);
  EXPECT_TRUE(run_once());
}

TEST_F(PipelineCacheTest, CorruptOrTruncatedFilesAreIgnoredAndReplaced) {
  fs::path file;
  run_once(&file);
  const auto size = fs::file_size(file);
  {
    // Flip a byte in the payload: the checksum no longer matches.
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(size / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(std::streamoff(size / 2));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  EXPECT_FALSE(run_once());
  EXPECT_TRUE(run_once()) << "the corrupt file is replaced by a good one on exit";
  fs::resize_file(file, 10);
  EXPECT_FALSE(run_once());
  {
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f << "not a pipeline cache at all, but long enough to have a header......";
  }
  EXPECT_FALSE(run_once());
  EXPECT_TRUE(run_once());
}

TEST_F(PipelineCacheTest, UnwritableDirectoryOnlyCostsTheCache) {
  // A regular file where the directory should be: saving fails, nothing throws.
  const fs::path blocker = dir_ / "blocked";
  { std::ofstream(blocker) << "x"; }
  ContextOptions o = test::test_options();
  o.pipeline_cache_dir = blocker / "sub";
  std::shared_ptr<const ValidationLog> log;
  {
    Context ctx = Context::create(o);
    log = ctx.validation_log();
    (void)ctx.pipeline("scale_f32");
    EXPECT_NO_THROW(ctx.save_pipeline_cache());
  }
  test::expect_no_validation_messages(*log);
}

}  // namespace
}  // namespace kwaai::runtime
