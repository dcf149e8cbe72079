// Yamux header decoder: accepted headers re-encode to the same 12 bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "p2p/libp2p/yamux_frame.hpp"
#include "tests/fuzz/libp2p_fuzz_check.hpp"

using namespace kwaai::p2p::libp2p;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in(data, size);
  // Walk the input as a frame stream (headers with DATA payloads), as a session would.
  while (!in.empty()) {
    auto h = yamux::decode_header(in);
    if (!h.ok()) break;
    const auto again = yamux::encode_header(*h);
    LIBP2P_FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin()));
    auto back = yamux::decode_header(again);
    LIBP2P_FUZZ_CHECK(back.ok() && *back == *h);
    in = in.subspan(yamux::kHeaderSize);
    if (h->type == yamux::FrameType::kData) {
      if (h->length > in.size()) break;
      in = in.subspan(h->length);
    }
  }
  return 0;
}
