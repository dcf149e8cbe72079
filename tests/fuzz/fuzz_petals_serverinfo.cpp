// Fuzzes ServerInfo.from_tuple over MSGPackSerializer.loads, and the block-record reader: an
// accepted ServerInfo must re-encode and decode to itself; nothing may crash on any input.
#include <cstddef>
#include <cstdint>

#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/dht_records.hpp"
#include "p2p/petals/server_info.hpp"

using namespace kwaai::p2p;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto info = petals::ServerInfo::decode(hivemind::ByteView(data, size));
  if (info.ok()) {
    auto back = petals::ServerInfo::decode(info->encode());
    if (!back.ok() || !(*back == *info)) __builtin_trap();
  }
  auto v = hivemind::msgpack_decode(hivemind::ByteView(data, size));
  if (v.ok()) {
    const auto rec = petals::read_block_record(*v, 0);
    for (const auto& s : rec.servers)
      if (!s.info.validate().ok()) __builtin_trap();  // readers only hand out valid infos
    (void)petals::ModelInfo::from_value(*v);
  }
  return 0;
}
