// Fuzzes MSGPackSerializer.loads: whatever decodes must re-encode and decode to the same value.
#include <cstddef>
#include <cstdint>

#include "p2p/hivemind/msgpack_codec.hpp"

using namespace kwaai::p2p::hivemind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto v = msgpack_decode(ByteView(data, size));
  if (!v.ok()) return 0;
  auto bytes = msgpack_encode(*v);
  if (!bytes.ok()) __builtin_trap();
  auto back = msgpack_decode(*bytes);
  if (!back.ok() || !(*back == *v)) __builtin_trap();
  if (v->kind() == Value::Kind::dictionary && !DictionaryDHTValue::from_value(*v).ok())
    __builtin_trap();
  return 0;
}
