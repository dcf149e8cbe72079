// Profiles: save/load round trip, the file name derived from the key, and every way a file on
// disk can be wrong (not JSON, truncated, missing or out-of-range fields, another key) being
// ignored rather than thrown.
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "calibration/profile.hpp"

namespace kwaai::calibration {
namespace {

namespace fs = std::filesystem;

class ProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    dir_ = fs::temp_directory_path() /
           ("kwaai-calib-profile-" + std::to_string(::getpid()) + "-" + std::to_string(seed_));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Profile sample() const {
    std::mt19937_64 rng(seed_);
    std::uniform_real_distribution<double> rate(1.0, 1e5);
    Profile p;
    p.device = "vulkan:0";
    p.device_name = "NVIDIA A100-SXM4-80GB";
    p.model = "llama-2-70b";
    p.quant = "none";
    p.memory_bytes = 85899345920ull;
    p.memory_source = "vulkan device-local heap";
    p.autograd_bytes = 1227133513.142857;
    p.block_bytes = 1728421888;
    p.attn_cache_tokens = 16384;
    p.cache_bytes_per_block = 67108864;
    p.num_layers = 80;
    p.num_blocks = 47;
    p.forward_rps = rate(rng);
    p.inference_rps = rate(rng);
    p.compute_rps = p.forward_rps;
    p.network_rps = 762.939453125;
    p.network_source = "petals-default-100mbit";
    p.using_relay = false;
    p.throughput = std::min(p.forward_rps / 24, p.network_rps);
    p.quick = true;
    p.created_unix = 1790000000;
    return p;
  }

  void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }

  std::uint64_t seed_ = 0;
  fs::path dir_;
};

TEST_F(ProfileTest, KeyFollowsPetalsCacheKeyWithSpacesReplaced) {
  EXPECT_EQ(sample().key(), "model_llama-2-70b_device_NVIDIA_A100-SXM4-80GB_quant_none");
  EXPECT_EQ(profile_path(dir_, "model_a/b_device_x (y)_quant_none").filename(),
            "model_a_b_device_x__y__quant_none.json");
}

TEST_F(ProfileTest, SaveThenLoadRoundTripsEveryField) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const Profile p = sample();
  const fs::path path = save_profile(dir_, p);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(fs::path(path).concat(".tmp")));
  const auto got = load_profile(dir_, p.key());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->to_json(), p.to_json());
  EXPECT_DOUBLE_EQ(got->forward_rps, p.forward_rps);
  EXPECT_EQ(got->num_blocks, 47);
}

TEST_F(ProfileTest, MissingProfileIsNotAnError) {
  EXPECT_FALSE(load_profile(dir_, sample().key()).has_value());
}

TEST_F(ProfileTest, CorruptFilesAreIgnored) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const Profile p = sample();
  const fs::path path = profile_path(dir_, p.key());
  const std::string good = p.to_json().dump();

  auto expect_ignored = [&](const std::string& text, const char* why) {
    SCOPED_TRACE(why);
    write(path, text);
    EXPECT_FALSE(load_profile(dir_, p.key()).has_value());
  };
  expect_ignored("", "empty");
  expect_ignored("not json {", "not JSON");
  expect_ignored(good.substr(0, good.size() / 2), "truncated");
  expect_ignored("[1, 2, 3]", "not an object");

  auto mutated = [&](auto&& edit) {
    nlohmann::json j = p.to_json();
    edit(j);
    return j.dump();
  };
  expect_ignored(mutated([](auto& j) { j.erase("num_blocks"); }), "missing num_blocks");
  expect_ignored(mutated([](auto& j) { j["num_blocks"] = 0; }), "zero blocks");
  expect_ignored(mutated([](auto& j) { j["num_blocks"] = 81; }), "more blocks than layers");
  expect_ignored(mutated([](auto& j) { j["throughput"] = "fast"; }), "string rate");
  expect_ignored(mutated([](auto& j) { j["forward_rps"] = -1.0; }), "negative rate");
  expect_ignored(mutated([](auto& j) { j["version"] = 99; }), "future version");
  expect_ignored(mutated([](auto& j) { j["quant"] = "nf4"; }), "unknown quant");
  expect_ignored(mutated([](auto& j) { j["memory_bytes"] = 1000; }), "block larger than memory");
  expect_ignored(mutated([](auto& j) { j["model"] = "llama-3-8b"; }), "key disagrees");
  // A valid profile of another key stored under this key's file name.
  Profile other = p;
  other.model = "llama-3-8b";
  expect_ignored(other.to_json().dump(), "another key");

  // And the good file still loads after all that.
  write(path, good);
  EXPECT_TRUE(load_profile(dir_, p.key()).has_value());
}

TEST_F(ProfileTest, OversizedFileIsIgnoredWithoutReadingIt) {
  const Profile p = sample();
  write(profile_path(dir_, p.key()), std::string(2 << 20, ' '));
  EXPECT_FALSE(load_profile(dir_, p.key()).has_value());
}

TEST_F(ProfileTest, DefaultDirIsUnderTheKwaainetCacheDir) {
  const auto d = default_profile_dir();
  if (!d) GTEST_SKIP() << "neither XDG_CACHE_HOME nor HOME is set";
  EXPECT_EQ(d->filename(), "calibration");
  EXPECT_EQ(d->parent_path().filename(), "kwaainet");
}

}  // namespace
}  // namespace kwaai::calibration
