// Fuzzes the unary envelope path: uvarint-delimited PersistentConnectionRequest decoding (as a
// callee reads calls and a caller reads replies), with re-encoding of whatever parses.
#include <cstddef>
#include <cstdint>

#include "p2p/hivemind/framing.hpp"

using namespace kwaai::p2p::hivemind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  DelimitedDecoder dec(1u << 16);
  // Feed in two pieces to exercise the incremental path.
  const std::size_t half = size / 2;
  dec.feed(ByteView(data, half));
  for (int round = 0; round < 2; ++round) {
    for (;;) {
      auto m = dec.next();
      if (!m.ok() || !m->has_value()) break;
      if (auto call = parse_unary_call(**m); call.ok()) {
        auto again = encode_unary_call(*call, 1u << 20);
        if (again.ok()) {
          DelimitedDecoder d2;
          d2.feed(*again);
          auto back = d2.next();
          if (!back.ok() || !back->has_value() || !parse_unary_call(**back).ok()) __builtin_trap();
        }
      }
      if (auto reply = parse_unary_reply(**m); reply.ok()) (void)encode_unary_reply(*reply);
    }
    if (round == 0) dec.feed(ByteView(data + half, size - half));
  }
  return 0;
}
