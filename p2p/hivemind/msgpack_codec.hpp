// MSGPackSerializer.dumps / loads, byte-compatible with hivemind (msgpack-python 1.0.x with
// use_bin_type=True, strict_types=True, raw=False, strict_map_key=True).
#pragma once

#include <cstddef>

#include "p2p/hivemind/msgpack_value.hpp"

namespace kwaai::p2p::hivemind {

// Bounds applied while decoding remote bytes. Defaults are generous for DHT values and Petals
// metadata (kilobytes) while keeping a hostile 4 MiB message from expanding into gigabytes.
struct MsgpackLimits {
  std::size_t max_input_bytes = 8u << 20;  // refuse larger inputs outright
  std::size_t max_depth = 32;              // nesting of arrays/maps/ext payloads
  std::size_t max_elements = 1u << 18;     // total decoded values (each costs ~150 bytes)
};

// Encodes with the smallest widths msgpack-python picks (floats always float64 0xcb). Fails only
// for things hivemind's packer refuses too: a dictionary/tensor-descriptor ext whose children
// have the wrong shape.
Result<Bytes> msgpack_encode(const Value& v);

// Decodes exactly one object spanning all of `in`. Rejects truncated input, trailing bytes,
// invalid UTF-8 in str, map keys other than str/bin (strict_map_key), and malformed ext 0x40/
// 0x50/0x51 payloads; unknown ext types decode to their raw payload as bin (hivemind's
// behaviour); float32 (0xca) decodes to a float64.
Result<Value> msgpack_decode(ByteView in, const MsgpackLimits& limits = {});

}  // namespace kwaai::p2p::hivemind
