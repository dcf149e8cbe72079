// Fuzzes the streaming frame decoder (marker + 8-byte big-endian length) and RPCError parsing.
#include <cstddef>
#include <cstdint>

#include "p2p/hivemind/framing.hpp"

using namespace kwaai::p2p::hivemind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  StreamFrameDecoder dec(1u << 20);
  std::size_t off = 0, step = 1;
  while (off < size) {
    std::size_t n = std::min(step, size - off);
    dec.feed(ByteView(data + off, n));
    off += n;
    step = step * 3 + 1;
    for (;;) {
      auto f = dec.next();
      if (!f.ok() || !f->has_value()) break;
      const StreamFrame& fr = **f;
      if (fr.marker == FrameMarker::error) (void)parse_rpc_error(fr.payload);
      Bytes again = encode_stream_frame(fr.marker, fr.payload);
      if (again.size() != fr.payload.size() + kStreamFrameHeaderBytes) __builtin_trap();
    }
  }
  return 0;
}
