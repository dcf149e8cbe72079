// RecvRing (the Yamux stream receive buffer) against a std::deque model: random interleavings of
// appends, in-place fills (prepare/commit, possibly partial, possibly wrapped) and reads keep the
// byte order, never lose or invent a byte, and grow only on demand.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "p2p/libp2p/host/yamux_session.hpp"

namespace kwaai::p2p::libp2p {
namespace {

TEST(RecvRing, MatchesAByteQueueUnderRandomFillsAndReads) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  RecvRing ring;
  std::deque<std::uint8_t> model;
  std::uint8_t next = 0;  // successive byte values make misplaced bytes visible
  auto size_of = [&](std::size_t max) {
    return std::uniform_int_distribution<std::size_t>(0, max)(rng);
  };

  for (int op = 0; op < 20000; ++op) {
    switch (rng() % 3) {
      case 0: {  // append through the copying path
        std::vector<std::uint8_t> b(size_of(rng() % 8 == 0 ? 20000 : 300));
        for (auto& x : b) model.push_back(x = next++);
        ring.append(b);
        break;
      }
      case 1: {  // the session's in-place fill: prepare, write part of it, commit that part
        const std::size_t want = size_of(5000);
        auto span = ring.prepare(want);
        ASSERT_LE(span.size(), want);
        if (want > 0) {
          ASSERT_GT(span.size(), 0u) << "prepare gave no room for " << want;
        }
        const std::size_t fill = span.empty() ? 0 : size_of(span.size());
        for (std::size_t i = 0; i < fill; ++i) model.push_back(span[i] = next++);
        ring.commit(fill);
        break;
      }
      default: {
        std::vector<std::uint8_t> out(size_of(6000), 0xEE);
        const std::size_t got = ring.read(out);
        ASSERT_EQ(got, std::min(out.size(), model.size()));
        for (std::size_t i = 0; i < got; ++i) {
          ASSERT_EQ(out[i], model.front()) << "byte " << i << " of read at op " << op;
          model.pop_front();
        }
        for (std::size_t i = got; i < out.size(); ++i) ASSERT_EQ(out[i], 0xEE);
      }
    }
    ASSERT_EQ(ring.size(), model.size());
  }
}

TEST(RecvRing, EmptyPrepareIsANoOpAndAnEmptyRingReadsNothing) {
  RecvRing ring;
  EXPECT_TRUE(ring.prepare(0).empty());
  std::uint8_t b[4] = {9, 9, 9, 9};
  EXPECT_EQ(ring.read(b), 0u);
  EXPECT_EQ(b[0], 9);
  const std::uint8_t in[3] = {1, 2, 3};
  ring.append(ByteView(in, 3));
  EXPECT_TRUE(ring.prepare(0).empty());
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.read(b), 3u);
  EXPECT_EQ(b[2], 3);
}

// A fill that exactly fills the ring must not be mistaken for an empty one on the next call.
TEST(RecvRing, ExactlyFullRingGrowsInsteadOfOverwriting) {
  RecvRing ring;
  std::vector<std::uint8_t> first(4096);
  for (std::size_t i = 0; i < first.size(); ++i) first[i] = static_cast<std::uint8_t>(i * 7);
  ring.append(first);  // first growth is to 4096: now exactly full
  const std::uint8_t more[2] = {0xAB, 0xCD};
  ring.append(ByteView(more, 2));
  std::vector<std::uint8_t> out(4098);
  ASSERT_EQ(ring.read(out), out.size());
  for (std::size_t i = 0; i < first.size(); ++i) ASSERT_EQ(out[i], first[i]) << i;
  EXPECT_EQ(out[4096], 0xAB);
  EXPECT_EQ(out[4097], 0xCD);
}

}  // namespace
}  // namespace kwaai::p2p::libp2p
