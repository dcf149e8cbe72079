// libp2p protobufs (keys, identify, kad, signed peer records) and delimited framing. The first byte
// picks the message; parsed messages must re-serialize to bytes that parse to the same
// serialization.
#include <cstddef>
#include <cstdint>

#include "p2p/libp2p/crypto/keys.hpp"
#include "p2p/libp2p/delimited.hpp"
#include "p2p/libp2p/peer_id.hpp"
#include "p2p/libp2p/peer_record.hpp"
#include "p2p/libp2p/proto/dht.pb.h"
#include "p2p/libp2p/proto/identify.pb.h"
#include "tests/fuzz/libp2p_fuzz_check.hpp"

using namespace kwaai::p2p::libp2p;

namespace {

template <class Msg>
void stable(ByteView in, std::size_t max) {
  Msg m;
  if (!parse(in, m, max).ok()) return;
  const Bytes once = serialize(m);
  Msg again;
  LIBP2P_FUZZ_CHECK(parse(once, again, max + 64).ok() || once.size() > max + 64);
  LIBP2P_FUZZ_CHECK(serialize(again) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ByteView in(data + 1, size - 1);
  switch (data[0] % 7) {
    case 0: {
      auto k = PublicKey::from_protobuf(in);
      if (!k.ok()) break;
      auto again = PublicKey::from_protobuf(k->to_protobuf());
      LIBP2P_FUZZ_CHECK(again.ok() && *again == *k);
      (void)PeerId::from_public_key(*k).to_base58();
      (void)k->verify(in, in);
      break;
    }
    case 1: {
      auto k = PrivateKey::from_protobuf(in);
      if (!k.ok()) break;
      auto again = PrivateKey::from_protobuf(k->to_protobuf());
      LIBP2P_FUZZ_CHECK(again.ok() && again->public_key() == k->public_key());
      break;
    }
    case 2:
      stable<pb::Identify>(in, kIdentifyMaxMessage);
      break;
    case 3:
      stable<pb::Message>(in, kKadMaxMessage);
      break;
    case 5: {  // signed peer record (identify field 8)
      (void)open_peer_record(in);
      break;
    }
    case 6: {  // peer record payload: decode → encode → decode keeps the fields
      auto r = PeerRecord::decode(in);
      if (!r.ok()) break;
      auto again = PeerRecord::decode(r->encode());
      LIBP2P_FUZZ_CHECK(again.ok() && again->peer_id == r->peer_id && again->seq == r->seq &&
                        again->addresses == r->addresses);
      break;
    }
    case 4: {  // a stream of delimited kad messages
      DelimitedReader reader(kKadMaxMessage);
      reader.feed(in);
      for (int i = 0; i < 1024; ++i) {
        auto m = reader.next();
        if (!m.ok() || !m->has_value()) break;
        pb::Message msg;
        (void)parse(**m, msg, kKadMaxMessage);
      }
      break;
    }
  }
  return 0;
}
