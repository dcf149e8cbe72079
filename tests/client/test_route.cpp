// Route selection as a pure function: compute_spans over DHT records and make_route's choice.
#include <gtest/gtest.h>

#include "cli/client/route.hpp"

namespace kwaai::client {
namespace {

using p2p::petals::BlockRecord;
using p2p::petals::BlockServer;
using p2p::petals::ServerInfo;
using p2p::petals::ServerState;

ServerInfo info(ServerState st, std::optional<std::uint64_t> start = std::nullopt,
                std::optional<std::uint64_t> end = std::nullopt,
                std::optional<double> inference_rps = std::nullopt) {
  ServerInfo i;
  i.state = st;
  i.throughput = 1;
  i.start_block = start;
  i.end_block = end;
  i.inference_rps = inference_rps;
  return i;
}

// n blocks; each server listed in every block of its announced span.
struct Swarm {
  std::vector<BlockRecord> blocks;
  explicit Swarm(std::size_t n) : blocks(n) {}
  Swarm& add(const std::string& peer, std::uint32_t start, std::uint32_t end, ServerState st,
             std::optional<double> rps = 100.0, bool announce_span = true) {
    for (std::uint32_t b = start; b < end; ++b)
      blocks.at(b).servers.push_back(
          BlockServer{peer,
                      {},
                      info(st, announce_span ? std::optional<std::uint64_t>(start) : std::nullopt,
                           announce_span ? std::optional<std::uint64_t>(end) : std::nullopt, rps),
                      1e12});
    return *this;
  }
  std::vector<RemoteSpan> spans() const { return compute_spans(blocks, 0, ServerState::online); }
};

std::vector<std::tuple<std::string, std::uint32_t, std::uint32_t>> hops(
    const std::vector<RemoteSpan>& r) {
  std::vector<std::tuple<std::string, std::uint32_t, std::uint32_t>> out;
  for (const auto& s : r) out.emplace_back(s.peer, s.start, s.end);
  return out;
}

TEST(ClientRoute, TwoServersSplittingTheModelFormTheOnlyChain) {
  Swarm sw(5);
  sw.add("QmB", 3, 5, ServerState::online).add("QmA", 0, 3, ServerState::online);
  auto r = make_route(sw.spans(), 0, 5);
  ASSERT_TRUE(r) << r.error().what();
  using H = std::tuple<std::string, std::uint32_t, std::uint32_t>;
  EXPECT_EQ(hops(*r), (std::vector<H>{{"QmA", 0, 3}, {"QmB", 3, 5}}));
  EXPECT_EQ(describe_route(*r), "QmA[0:3) -> QmB[3:5)");
}

TEST(ClientRoute, AGapNamesTheFirstUncoveredBlock) {
  Swarm sw(6);
  sw.add("QmA", 0, 2, ServerState::online).add("QmB", 3, 6, ServerState::online);
  auto r = make_route(sw.spans(), 0, 6);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("block 2"), std::string::npos) << r.error().message;
  // Nothing at all: the error says so too.
  auto none = make_route({}, 0, 5);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("block 0"), std::string::npos);
}

TEST(ClientRoute, OfflineAndJoiningServersAreSkippedLikePetals) {
  Swarm sw(4);
  sw.add("QmA", 0, 4, ServerState::joining)
      .add("QmB", 0, 4, ServerState::offline)
      .add("QmC", 0, 2, ServerState::online);
  const auto spans = sw.spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].peer, "QmC");
  EXPECT_FALSE(make_route(spans, 0, 4));
  // With min_state JOINING (block selection) the joining server counts.
  EXPECT_EQ(compute_spans(sw.blocks, 0, ServerState::joining).size(), 2u);
}

TEST(ClientRoute, SpansWithoutAnnouncedBoundsGrowOverConsecutiveBlocks) {
  Swarm sw(5);
  sw.add("QmA", 1, 4, ServerState::online, 100.0, /*announce_span=*/false);
  const auto spans = sw.spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].start, 1u);
  EXPECT_EQ(spans[0].end, 4u);
}

TEST(ClientRoute, AnnouncedSpansAreClippedToTheRequestedRange) {
  // Records for blocks 10..14 only (first_block = 10); a server announcing [8, 20).
  Swarm sw(5);
  for (auto& b : sw.blocks)
    b.servers.push_back({"QmA", {}, info(ServerState::online, 8, 20), 1e12});
  const auto spans = compute_spans(sw.blocks, 10, ServerState::online);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].start, 10u);
  EXPECT_EQ(spans[0].end, 15u);
}

TEST(ClientRoute, FewerHopsAndFasterServersWin) {
  Swarm sw(6);
  // One server holding everything beats three short ones at the same speed (hop costs).
  sw.add("QmWhole", 0, 6, ServerState::online)
      .add("QmA", 0, 2, ServerState::online)
      .add("QmB", 2, 4, ServerState::online)
      .add("QmC", 4, 6, ServerState::online);
  auto r = make_route(sw.spans(), 0, 6);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].peer, "QmWhole");
  // A much faster pair beats a slow whole-model server (1/rps per block dominates).
  Swarm slow(6);
  slow.add("QmSlow", 0, 6, ServerState::online, 0.5)
      .add("QmFast1", 0, 3, ServerState::online, 1000.0)
      .add("QmFast2", 3, 6, ServerState::online, 1000.0);
  auto f = make_route(slow.spans(), 0, 6);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->size(), 2u);
  EXPECT_EQ((*f)[0].peer, "QmFast1");
  EXPECT_EQ((*f)[1].peer, "QmFast2");
}

TEST(ClientRoute, AmongEqualServersTheChoiceIsDeterministic) {
  Swarm sw(5);
  sw.add("QmA", 0, 3, ServerState::online)
      .add("QmZ", 3, 5, ServerState::online)
      .add("QmY", 3, 5, ServerState::online);
  auto r1 = make_route(sw.spans(), 0, 5);
  ASSERT_TRUE(r1);
  EXPECT_EQ((*r1)[1].peer, "QmY");
  // A faster one among several wins regardless of its id.
  Swarm sw2(5);
  sw2.add("QmA", 0, 3, ServerState::online)
      .add("QmY", 3, 5, ServerState::online, 10.0)
      .add("QmZ", 3, 5, ServerState::online, 50.0);
  auto r2 = make_route(sw2.spans(), 0, 5);
  ASSERT_TRUE(r2);
  EXPECT_EQ((*r2)[1].peer, "QmZ");
}

TEST(ClientRoute, ARouteMayEnterASpanMidwayButLeavesOnlyAtItsEnd) {
  Swarm sw(6);
  sw.add("QmA", 0, 4, ServerState::online).add("QmB", 2, 6, ServerState::online);
  auto r = make_route(sw.spans(), 0, 6);
  ASSERT_TRUE(r);
  using H = std::tuple<std::string, std::uint32_t, std::uint32_t>;
  EXPECT_EQ(hops(*r), (std::vector<H>{{"QmA", 0, 4}, {"QmB", 4, 6}}));
  // A sub-range (a failover re-route of blocks [3, 5)): QmB alone covers it, entered midway.
  auto sub = make_route(sw.spans(), 3, 5);
  ASSERT_TRUE(sub);
  EXPECT_EQ(hops(*sub), (std::vector<H>{{"QmB", 3, 5}}));
}

TEST(ClientRoute, BannedServersAreAvoidedUnlessTheyAreTheOnlyHolders) {
  Swarm sw(5);
  sw.add("QmA", 0, 3, ServerState::online)
      .add("QmB", 3, 5, ServerState::online)
      .add("QmC", 3, 5, ServerState::online);
  RouteOptions opt;
  opt.banned = {"QmB"};
  auto r = make_route(sw.spans(), 0, 5, opt);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[1].peer, "QmC");
  // QmA is banned too but holds blocks nobody else has: still used (Petals keeps it).
  opt.banned = {"QmA", "QmB"};
  auto r2 = make_route(sw.spans(), 0, 5, opt);
  ASSERT_TRUE(r2);
  EXPECT_EQ((*r2)[0].peer, "QmA");
  EXPECT_EQ((*r2)[1].peer, "QmC");
}

TEST(ClientRoute, AServerWithoutCacheIsPenalisedNotExcluded) {
  Swarm sw(2);
  sw.add("QmA", 0, 2, ServerState::online, 1000.0).add("QmB", 0, 2, ServerState::online, 10.0);
  for (auto& b : sw.blocks)
    for (auto& s : b.servers)
      if (s.peer_id_base58 == "QmA") s.info.cache_tokens_left = 10;
  RouteOptions opt;
  opt.cache_tokens_needed = 128;
  auto r = make_route(sw.spans(), 0, 2, opt);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].peer, "QmB");
  // Alone, the cache-less server is still chosen.
  Swarm one(2);
  one.add("QmA", 0, 2, ServerState::online);
  for (auto& b : one.blocks) b.servers[0].info.cache_tokens_left = 10;
  EXPECT_TRUE(make_route(one.spans(), 0, 2, opt));
}

}  // namespace
}  // namespace kwaai::client
