// ContextOptions::from_environment: the one place the runtime reads the environment.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/context.hpp"

namespace kwaai::runtime {
namespace {

// Sets variables for one test and restores the previous values afterwards.
class ScopedEnv {
 public:
  void set(const char* name, const char* value) {
    const char* old = std::getenv(name);
    saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second)
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else
        ::unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(ContextOptions, EnvironmentSelectsValidationDeviceAndCacheDir) {
  ScopedEnv env;
  env.set("KWAAI_VK_VALIDATION", "1");
  env.set("KWAAI_VK_DEVICE", "3");
  env.set("KWAAI_VK_PIPELINE_CACHE", nullptr);
  env.set("XDG_CACHE_HOME", "/tmp/kwaai-xdg");
  const ContextOptions o = ContextOptions::from_environment();
  EXPECT_TRUE(o.enable_validation);
  EXPECT_EQ(o.device_index, 3u);
  ASSERT_TRUE(o.pipeline_cache_dir.has_value());
  EXPECT_EQ(*o.pipeline_cache_dir, std::filesystem::path("/tmp/kwaai-xdg/kwaainet"));
}

TEST(ContextOptions, DefaultsWithoutVariablesAndCacheCanBeDisabled) {
  ScopedEnv env;
  env.set("KWAAI_VK_VALIDATION", nullptr);
  env.set("KWAAI_VK_DEVICE", nullptr);
  env.set("XDG_CACHE_HOME", nullptr);
  env.set("HOME", "/home/someone");
  ContextOptions o = ContextOptions::from_environment();
  EXPECT_FALSE(o.enable_validation);
  EXPECT_EQ(o.device_index, 0u);
  ASSERT_TRUE(o.pipeline_cache_dir.has_value());
  EXPECT_EQ(*o.pipeline_cache_dir, std::filesystem::path("/home/someone/.cache/kwaainet"));
  env.set("KWAAI_VK_PIPELINE_CACHE", "0");
  o = ContextOptions::from_environment();
  EXPECT_FALSE(o.pipeline_cache_dir.has_value());
}

}  // namespace
}  // namespace kwaai::runtime
