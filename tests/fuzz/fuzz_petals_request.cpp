// Fuzzes the server's view of Petals requests: the first byte picks the input kind (0: request
// metadata msgpack, else: an ExpertRequest). Metadata is parsed, re-encoded and re-parsed;
// requests go through args_structure resolution, stream reassembly, forward validation and two
// steps of the inference state machine. Errors are fine; crashes, hangs and inconsistencies are
// not.
#include <cstddef>
#include <cstdint>

#include "p2p/hivemind/dht_messages.hpp"
#include "p2p/petals/forward_request.hpp"
#include "p2p/petals/inference_protocol.hpp"
#include "p2p/petals/metadata.hpp"
#include "p2p/petals/rpc_messages.hpp"

using namespace kwaai::p2p;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const hivemind::ByteView in(data + 1, size - 1);
  if (data[0] == 0) {
    auto m = petals::parse_request_metadata(in);
    if (!m.ok()) return 0;
    auto again = petals::parse_request_metadata(m->encode());
    if (!again.ok() || again->encode() != m->encode()) __builtin_trap();
    (void)petals::resolve_args_structure(m->args_structure, 4);
    return 0;
  }
  auto req = hivemind::parse_message<hivemind::pb::ExpertRequest>(in);
  if (!req.ok()) return 0;
  if (auto m = petals::parse_request_metadata(hivemind::as_bytes(req->metadata())); m.ok())
    (void)petals::resolve_args_structure(m->args_structure, req->tensors_size());
  // Small limits keep every accepted allocation tiny.
  auto limits = petals::ServerLimits::petals_defaults();
  limits.inference_max_length = 64;
  limits.max_batch_size = 64;
  petals::InferenceProtocol p(
      petals::SpanSchema{"stories260K-hf", 1, 4, 64, hivemind::DType::float32, hivemind::pb::NONE},
      limits);
  (void)p.on_request(*req);
  (void)p.on_request(*req);
  (void)petals::assemble_stream_request({*req, *req}, 8, 1u << 20);
  (void)petals::decode_forward_request(
      *req,
      petals::SpanSchema{"stories260K-hf", 0, 5, 64, hivemind::DType::float32, hivemind::pb::NONE},
      limits);
  return 0;
}
