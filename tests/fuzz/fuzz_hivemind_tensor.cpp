// Fuzzes Tensor protobuf parsing and deserialize_tensor for every compression type, then
// streaming split/group of whatever parsed.
#include <cstddef>
#include <cstdint>

#include "p2p/hivemind/tensor.hpp"

using namespace kwaai::p2p::hivemind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  pb::Tensor t;
  if (!t.ParseFromArray(data, static_cast<int>(size))) return 0;
  DeserializeLimits lim;
  lim.max_elements = 1u << 20;
  auto host = deserialize_tensor(t, lim);
  if (host.ok()) {
    if (host->data.size() != host->numel() * dtype_size(host->dtype)) __builtin_trap();
    // Every encoder must accept or refuse whatever a peer may send (NaN, inf, empty, any shape)
    // without UB, and what it produces must decode again.
    if (host->numel() <= 4096) {
      for (auto c : {pb::NONE, pb::FLOAT16, pb::MEANSTD_16BIT, pb::QUANTILE_8BIT, pb::UNIFORM_8BIT,
                     pb::BLOCKWISE_8BIT}) {
        auto enc = serialize_tensor(*host, c);
        if (enc.ok() && !deserialize_tensor(*enc).ok()) __builtin_trap();
      }
    }
  }
  auto parts = split_for_streaming(t, 64);
  auto grouped = group_streamed_parts(parts);
  if (t.dtype().empty()) return 0;  // a first part without dtype cannot start a group
  if (!grouped.ok() || grouped->size() != 1 || (*grouped)[0].buffer() != t.buffer())
    __builtin_trap();
  return 0;
}
