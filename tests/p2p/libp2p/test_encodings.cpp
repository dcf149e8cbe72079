// uvarint, base58btc, base32 and multihash against vectors from the libp2p spec and js-libp2p.
#include <gtest/gtest.h>

#include "p2p/libp2p/multibase.hpp"
#include "p2p/libp2p/multihash.hpp"
#include "p2p/libp2p/varint.hpp"
#include "tests/p2p/libp2p/test_util.hpp"

namespace kwaai::p2p::libp2p {
namespace {
using test::hex;

TEST(Uvarint, EncodesMultiformatsVectors) {
  EXPECT_EQ(encode_uvarint(0), hex("00"));
  EXPECT_EQ(encode_uvarint(1), hex("01"));
  EXPECT_EQ(encode_uvarint(127), hex("7f"));
  EXPECT_EQ(encode_uvarint(128), hex("8001"));
  EXPECT_EQ(encode_uvarint(255), hex("ff01"));
  EXPECT_EQ(encode_uvarint(300), hex("ac02"));
  EXPECT_EQ(encode_uvarint(16384), hex("808001"));
  EXPECT_EQ(encode_uvarint(421), hex("a503"));  // p2p multiaddr code
  EXPECT_EQ(encode_uvarint(kMaxUvarintValue).size(), 9u);
  EXPECT_EQ(uvarint_size(kMaxUvarintValue), 9u);
}

TEST(Uvarint, RoundTripsRandomValues) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 63 + 1);  // ≤ 63 bits: the uvarint range
    const Bytes b = encode_uvarint(v);
    auto d = decode_uvarint(b);
    ASSERT_TRUE(d.ok()) << test::err(d);
    EXPECT_EQ(d->value, v);
    EXPECT_EQ(d->size, b.size());
  }
}

TEST(Uvarint, RejectsNonMinimalOverlongAndTruncated) {
  EXPECT_EQ(decode_uvarint(hex("8000")).error().code, Errc::kMalformed);
  EXPECT_EQ(decode_uvarint(hex("ff00")).error().code, Errc::kMalformed);
  EXPECT_EQ(decode_uvarint(hex("80")).error().code, Errc::kTruncated);
  EXPECT_EQ(decode_uvarint(ByteView{}).error().code, Errc::kTruncated);
  EXPECT_EQ(decode_uvarint(hex("ffffffffffffffffff01")).error().code, Errc::kTooLarge);
  EXPECT_EQ(decode_uvarint(hex("ffffffffffffffffff")).error().code, Errc::kTooLarge);
  // Trailing bytes are not consumed.
  auto d = decode_uvarint(hex("ac02ff"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->value, 300u);
  EXPECT_EQ(d->size, 2u);
}

TEST(Base58, MatchesBitcoinAlphabetVectors) {
  EXPECT_EQ(base58btc_encode(as_bytes("hello world")), "StV1DL6CwTryKyV");
  EXPECT_EQ(base58btc_encode(hex("0000287fb4cd")), "11233QC4");
  EXPECT_EQ(base58btc_encode({}), "");
  EXPECT_EQ(*base58btc_decode("StV1DL6CwTryKyV"),
            Bytes(as_bytes("hello world").begin(), as_bytes("hello world").end()));
  EXPECT_EQ(*base58btc_decode("11233QC4"), hex("0000287fb4cd"));
  EXPECT_EQ(base58btc_decode("0OIl").error().code, Errc::kMalformed);
  EXPECT_EQ(base58btc_decode(std::string(2000, '2')).error().code, Errc::kTooLarge);
}

TEST(Base58, RoundTripsRandomBytes) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    Bytes b = test::random_bytes(rng, rng() % 60);
    if (!b.empty() && rng() % 3 == 0) b[0] = 0;  // leading zeros become '1'
    auto d = base58btc_decode(base58btc_encode(b));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, b);
  }
}

TEST(Base32, MatchesRfc4648LowerNoPad) {
  EXPECT_EQ(base32_lower_encode(as_bytes("f")), "my");
  EXPECT_EQ(base32_lower_encode(as_bytes("fo")), "mzxq");
  EXPECT_EQ(base32_lower_encode(as_bytes("foo")), "mzxw6");
  EXPECT_EQ(base32_lower_encode(as_bytes("foob")), "mzxw6yq");
  EXPECT_EQ(base32_lower_encode(as_bytes("fooba")), "mzxw6ytb");
  EXPECT_EQ(base32_lower_encode(as_bytes("foobar")), "mzxw6ytboi");
  auto d = base32_lower_decode("mzxw6ytboi");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(as_chars(*d), "foobar");
  EXPECT_EQ(base32_lower_decode("MZXW6").error().code, Errc::kMalformed);     // upper case
  EXPECT_EQ(base32_lower_decode("mzxw6===").error().code, Errc::kMalformed);  // padding
  EXPECT_EQ(base32_lower_decode("mzx").error().code, Errc::kMalformed);       // impossible length
  EXPECT_EQ(base32_lower_decode("mz").error().code, Errc::kMalformed);        // non-zero tail bits
}

TEST(Base32, RoundTripsRandomBytes) {
  const auto seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    const Bytes b = test::random_bytes(rng, rng() % 80);
    auto d = base32_lower_decode(base32_lower_encode(b));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, b);
  }
}

TEST(Multihash, EncodesIdentityAndSha256) {
  EXPECT_EQ(multihash_identity(hex("0801")).encode(), hex("00020801"));
  // sha2-256("") = e3b0c442...
  EXPECT_EQ(multihash_sha2_256({}).encode(),
            hex("1220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  auto d =
      decode_multihash(hex("1220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  ASSERT_TRUE(d.ok()) << test::err(d);
  EXPECT_EQ(d->code, kMultihashSha2_256);
}

TEST(Multihash, RejectsBadLengthsAndCodes) {
  EXPECT_EQ(decode_multihash(hex("1221" + std::string(66, 'a'))).error().code, Errc::kMalformed);
  EXPECT_EQ(decode_multihash(hex("1220aa")).error().code, Errc::kTruncated);
  EXPECT_EQ(decode_multihash(hex("000100ff")).error().code, Errc::kMalformed);  // trailing byte
  EXPECT_EQ(decode_multihash(hex("1300")).error().code, Errc::kUnsupported);
  Bytes big = hex("0081");  // identity, 129 bytes
  big.push_back(0x01);
  big.resize(big.size() + 129);
  EXPECT_EQ(decode_multihash(big).error().code, Errc::kTooLarge);
}

TEST(Result, CarriesValueOrError) {
  Result<int> ok = 5;
  Result<int> bad = make_error(Errc::kMalformed, "x");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().to_string(), "malformed: x");
  Status s;
  EXPECT_TRUE(s.ok());
  Status f = make_error(Errc::kTimeout, "t");
  EXPECT_EQ(f.error().code, Errc::kTimeout);
}

}  // namespace
}  // namespace kwaai::p2p::libp2p
