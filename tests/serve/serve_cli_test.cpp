// `kwaainet serve` as a subprocess: it prints its listen address, answers rpc_info, and on
// SIGTERM announces OFFLINE (seen in a DHT peer's storage) and exits 0.
#include <utility>  // before asio (Boost 1.74 uses std::exchange unincluded)

#include <boost/asio/steady_timer.hpp>

#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "p2p/petals/dht_records.hpp"
#include "tests/serve/serve_test_util.hpp"

extern char** environ;

namespace kwaai::serve::test {
namespace {

using namespace std::chrono_literals;

// A child process with its stdout on a pipe; killed on destruction if still running.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe(fds) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    out_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }
  pid_t pid() const { return pid_; }
  // One line of stdout within `timeout`, or "" .
  std::string read_line(std::chrono::milliseconds timeout) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char c;
      if (read(out_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line.push_back(c);
    }
    return "";
  }
  // The exit status once the child has exited, else nullopt.
  std::optional<int> poll_exit() {
    int st = 0;
    if (exited_) return status_;
    if (waitpid(pid_, &st, WNOHANG) != pid_) return std::nullopt;
    exited_ = true;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

TEST(ServeCli, PrintsItsAddressServesAndExitsCleanlyOnSigtermAnnouncingOffline) {
  Child child({KWAAINET_BIN, "serve", "--model", stories_dir(), "--blocks", "0:5", "--device",
               "cpu", "--host-maddr", "/ip4/127.0.0.1/tcp/0", "--throughput", "10",
               "--update-period", "30"});
  ASSERT_GT(child.pid(), 0);
  const std::string line = child.read_line(30s);
  ASSERT_FALSE(line.empty()) << "no address printed";
  auto addr = lp::Multiaddr::from_string(line);
  ASSERT_TRUE(addr.ok()) << line;
  ASSERT_TRUE(addr->peer_id().has_value()) << line;
  const lp::PeerId server = *addr->peer_id();

  asio::io_context ctx;
  auto rn = net::test::make_node(ctx);
  auto rdht = net::DHTNode::create(rn.host, rn.kad);
  std::optional<int> exit_code;
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    const std::vector<lp::Multiaddr> peers{*addr};
    SERVE_CHECK(co_await rdht->bootstrap(peers) == 1, "bootstrap through " << line);
    // rpc_info answers once the server is ONLINE (it loads before registering handlers).
    bool online = false;
    asio::steady_timer t(ctx);
    const std::string name = std::string(kHandlerPrefix) + "rpc_info";
    const hm::Bytes req = to_bytes(hm::pb::ExpertUID{});
    for (int i = 0; i < 200 && !online; ++i) {
      auto ans = co_await net::call_unary(*rn.host, server, name, req);
      online = ans.ok() && !ans->is_error;
      if (!online) {
        t.expires_after(50ms);
        co_await t.async_wait(asio::use_awaitable);
      }
    }
    SERVE_CHECK(online, "rpc_info never answered");
    // Let the server see us as a DHT peer (it pings new connections), then stop it.
    t.expires_after(300ms);
    co_await t.async_wait(asio::use_awaitable);
    kill(child.pid(), SIGTERM);
    for (int i = 0; i < 400 && !exit_code; ++i) {
      t.expires_after(25ms);
      co_await t.async_wait(asio::use_awaitable);
      exit_code = child.poll_exit();
    }
  });
  ASSERT_TRUE(exit_code.has_value()) << "kwaainet serve did not exit after SIGTERM";
  EXPECT_EQ(*exit_code, 0);
  // The OFFLINE record reached our storage as one of the replicas.
  const auto key = hm::DHTID::from_key_str(petals::block_uid(kPrefix, 0));
  std::optional<petals::ServerState> state;
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    auto v = co_await rdht->get(key, false);
    SERVE_CHECK(v && v->is_dictionary, "no record for block 0 in our storage");
    for (const auto& s : petals::read_block_record(v->dictionary.to_value(), rdht->now()).servers)
      if (s.peer_id_base58 == server.to_base58()) state = s.info.state;
  });
  EXPECT_EQ(state, petals::ServerState::offline);
}

TEST(ServeCli, NumBlocksTakesTheLeastServedBlocksOfTheSwarm) {
  // A DHT peer that already holds an ONLINE record for blocks [0, 3).
  asio::io_context ctx;
  auto seed = net::test::make_node(ctx);
  auto sdht = net::DHTNode::create(seed.host, seed.kad);
  ServerConfig other;
  other.dht_prefix = kPrefix;
  other.update_period = 60;
  petals::ServerInfo info;
  info.state = petals::ServerState::online;
  info.throughput = 10;
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    SERVE_CHECK(co_await announce_span(*sdht, seed.host->id(), other, 0, 3, info) >= 3, "");
  });
  Child child({KWAAINET_BIN, "serve", "--model", stories_dir(), "--num-blocks", "2", "--device",
               "cpu", "--host-maddr", "/ip4/127.0.0.1/tcp/0", "--throughput", "10",
               "--initial-peers", net::test::full_addr(*seed.host).to_string()});
  ASSERT_GT(child.pid(), 0);
  // Keep the seed answering while the child bootstraps and reads the records.
  std::string line;
  std::thread reader([&] { line = child.read_line(30s); });
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    ctx.run_for(20ms);
    if (ctx.stopped()) ctx.restart();
    if (!line.empty()) break;
  }
  reader.join();
  auto addr = lp::Multiaddr::from_string(line);
  ASSERT_TRUE(addr.ok() && addr->peer_id()) << line;
  std::vector<bool> serves;
  run_coro(ctx, [&]() -> asio::awaitable<void> {
    SERVE_CHECK((co_await seed.host->connect(*addr)).ok(), "");
    asio::steady_timer t(ctx);
    const std::string name = std::string(kHandlerPrefix) + "rpc_info";
    for (std::uint32_t b = 0; b < 5; ++b) {
      hm::pb::ExpertUID uid;
      uid.set_uid(petals::block_uid(kPrefix, b));
      const hm::Bytes req = to_bytes(uid);
      std::optional<bool> ok;
      for (int i = 0; i < 200 && !ok; ++i) {
        // Until the server is ONLINE the protocol is not there (a transport error): retry.
        auto ans = co_await net::call_unary(*seed.host, *addr->peer_id(), name, req);
        if (ans.ok()) {
          ok = !ans->is_error;
        } else {
          t.expires_after(50ms);
          co_await t.async_wait(asio::use_awaitable);
        }
      }
      serves.push_back(ok.value_or(false));
    }
  });
  kill(child.pid(), SIGTERM);
  EXPECT_EQ(serves, (std::vector<bool>{false, false, false, true, true}));
}

// Sets an environment variable for the lifetime of the object (children inherit it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::optional<int> wait_exit(Child& child, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto st = child.poll_exit()) return st;
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
}

TEST(ServeCli, ThroughputDryRunMeasuresPrintsAndExitsWithoutSavingOrServing) {
  const auto cache =
      std::filesystem::temp_directory_path() / ("kwaai-serve-dry-" + std::to_string(::getpid()));
  std::filesystem::remove_all(cache);
  ScopedEnv env("XDG_CACHE_HOME", cache.string());
  Child child({KWAAINET_BIN, "serve", "--model", stories_dir(), "--device", "cpu", "--host-maddr",
               "/ip4/127.0.0.1/tcp/0", "--throughput", "dry_run"});
  ASSERT_GT(child.pid(), 0);
  const std::string line = child.read_line(60s);
  ASSERT_EQ(line.rfind("throughput ", 0), 0u) << line;
  EXPECT_GT(std::stod(line.substr(11)), 0.0) << line;
  EXPECT_NE(line.find("num_blocks 5"), std::string::npos) << line;
  EXPECT_EQ(wait_exit(child, 30s), 0);
  EXPECT_FALSE(std::filesystem::exists(cache / "kwaainet" / "calibration"));
  std::filesystem::remove_all(cache);
}

TEST(ServeCli, AFirstStartMeasuresThroughputAndSavesTheProfileForTheNext) {
  const auto cache =
      std::filesystem::temp_directory_path() / ("kwaai-serve-auto-" + std::to_string(::getpid()));
  std::filesystem::remove_all(cache);
  ScopedEnv env("XDG_CACHE_HOME", cache.string());
  Child child({KWAAINET_BIN, "serve", "--model", stories_dir(), "--blocks", "0:5", "--device",
               "cpu", "--host-maddr", "/ip4/127.0.0.1/tcp/0"});
  ASSERT_GT(child.pid(), 0);
  // The address is printed after the measurement (and its save) and the load.
  const std::string line = child.read_line(60s);
  ASSERT_FALSE(line.empty()) << "no address printed";
  // A stop right after the address (before the server is up) is still a clean exit.
  kill(child.pid(), SIGTERM);
  EXPECT_EQ(wait_exit(child, 30s), 0);
  const auto dir = cache / "kwaainet" / "calibration";
  ASSERT_TRUE(std::filesystem::exists(dir));
  int profiles = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) profiles += e.is_regular_file();
  EXPECT_EQ(profiles, 1);
  std::filesystem::remove_all(cache);
}

TEST(ServeCli, ABadThroughputValueIsRefused) {
  for (const char* bad : {"fast", "-1", "nan", "3x"}) {
    SCOPED_TRACE(bad);
    Child child({KWAAINET_BIN, "serve", "--model", stories_dir(), "--device", "cpu", "--host-maddr",
                 "/ip4/127.0.0.1/tcp/0", "--throughput", bad});
    ASSERT_GT(child.pid(), 0);
    const auto st = wait_exit(child, 30s);
    ASSERT_TRUE(st.has_value());
    EXPECT_NE(*st, 0);
  }
}

}  // namespace
}  // namespace kwaai::serve::test
