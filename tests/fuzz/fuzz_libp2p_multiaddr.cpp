// Multiaddr text and binary parsers and PeerId text/binary parsers.
// Binary multiaddrs are canonical (to_bytes == input); text round-trips through the value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "p2p/libp2p/multiaddr.hpp"
#include "p2p/libp2p/peer_id.hpp"
#include "tests/fuzz/libp2p_fuzz_check.hpp"

using namespace kwaai::p2p::libp2p;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  if (auto ma = Multiaddr::from_bytes(in); ma.ok()) {
    LIBP2P_FUZZ_CHECK(ma->to_bytes() == Bytes(in.begin(), in.end()));
    auto text = Multiaddr::from_string(ma->to_string());
    LIBP2P_FUZZ_CHECK(text.ok() && *text == *ma);
    (void)ma->tcp_endpoint();
    (void)ma->peer_id();
  }
  const std::string_view s = as_chars(in);
  if (auto ma = Multiaddr::from_string(s); ma.ok()) {
    auto bin = Multiaddr::from_bytes(ma->to_bytes());
    LIBP2P_FUZZ_CHECK(bin.ok() && *bin == *ma);
    auto text = Multiaddr::from_string(ma->to_string());
    LIBP2P_FUZZ_CHECK(text.ok() && *text == *ma);
  }
  if (auto id = PeerId::from_string(s); id.ok()) {
    auto b58 = PeerId::from_string(id->to_base58());
    auto cid = PeerId::from_string(id->to_cid_string());
    LIBP2P_FUZZ_CHECK(b58.ok() && *b58 == *id && cid.ok() && *cid == *id);
  }
  if (auto id = PeerId::from_bytes(in); id.ok()) {
    LIBP2P_FUZZ_CHECK(id->bytes() == Bytes(in.begin(), in.end()));
    auto b58 = PeerId::from_string(id->to_base58());
    LIBP2P_FUZZ_CHECK(b58.ok() && *b58 == *id);
  }
  return 0;
}
