// multistream-select: message decoder, ls decoder and both negotiators over arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "p2p/libp2p/multistream.hpp"
#include "tests/fuzz/libp2p_fuzz_check.hpp"

using namespace kwaai::p2p::libp2p;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);

  // Codec: an accepted message re-encodes to exactly the consumed bytes (canonical).
  if (auto m = multistream::decode_message(in); m.ok() && m->has_value()) {
    const Bytes again = multistream::encode_message((*m)->text);
    LIBP2P_FUZZ_CHECK(again.size() == (*m)->size);
    LIBP2P_FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin()));
  }
  if (auto ls = multistream::decode_ls_response(in); ls.ok()) {
    auto again = multistream::decode_ls_response(multistream::encode_ls_response(*ls));
    LIBP2P_FUZZ_CHECK(again.ok() && *again == *ls);
  }

  // Negotiators: feed the input in two pieces; they must either progress or fail cleanly.
  const std::size_t cut = size ? data[0] % (size + 1) : 0;
  multistream::Responder resp(std::vector<std::string>{"/noise", "/yamux/1.0.0"});
  if (auto p = resp.on_data(in.first(cut)); p.ok() && !p->done) {
    if (auto q = resp.on_data(in.subspan(cut)); q.ok() && q->done)
      LIBP2P_FUZZ_CHECK(q->selected == "/noise" || q->selected == "/yamux/1.0.0");
  }
  multistream::Initiator ini({"/tls/1.0.0", "/noise"});
  if (ini.start().ok()) {
    if (auto p = ini.on_data(in); p.ok() && p->done)
      LIBP2P_FUZZ_CHECK(p->selected == "/tls/1.0.0" || p->selected == "/noise");
  }
  multistream::MessageReader reader;
  reader.feed(in);
  for (int i = 0; i < 2048; ++i) {
    auto m = reader.next();
    if (!m.ok() || !m->has_value()) break;
  }
  return 0;
}
