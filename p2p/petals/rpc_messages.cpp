#include "p2p/petals/rpc_messages.hpp"

#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::p2p::petals {

namespace pb = hivemind::pb;

bool SpanSchema::serves(const std::string& uid) const {
  auto b = parse_block_uid(uid);
  return b && b->dht_prefix == dht_prefix && b->block >= start_block && b->block < end_block;
}

Value batch_tensor_descriptor(const std::vector<std::int64_t>& size, DType dtype,
                              CompressionType compression) {
  Value::Array dims;
  for (auto d : size) dims.push_back(d < 0 ? Value::nil() : Value::integer(d));
  return Value::tensor_descriptor({
      {Value::str("size"), Value::tuple(std::move(dims))},
      {Value::str("dtype"), Value::str("torch." + std::string(hivemind::dtype_name(dtype)))},
      {Value::str("layout"), Value::str("torch.strided")},
      {Value::str("requires_grad"), Value::boolean(false)},
      {Value::str("pin_memory"), Value::boolean(false)},
      {Value::str("compression"), Value::integer(static_cast<std::int64_t>(compression))},
      {Value::str("device_type"), Value::nil()},
      {Value::str("device_index"), Value::nil()},
  });
}

Result<pb::ExpertInfo> build_rpc_info_response(const pb::ExpertUID& request, const RpcInfo& info,
                                               const SpanSchema& span) {
  Value::Map m{
      {Value::str("version"), Value::str(info.version)},
      {Value::str("dht_client_mode"), Value::boolean(info.dht_client_mode)},
      {Value::str("cache_tokens_available"), Value::uinteger(info.cache_tokens_available)},
  };
  if (!request.uid().empty()) {
    if (!span.serves(request.uid()))
      return make_error(Errc::rejected, "KeyError: '" + request.uid() + "' is not served here");
    // TransformerBackend: args_schema = (BTD(1, 2048, hidden),) — Petals' literal example
    // shape, which clients read only for dtype/compression.
    const std::vector<std::int64_t> hidden{-1, 1, 2048,
                                           static_cast<std::int64_t>(span.hidden_size)};
    auto btd_hidden = [&] { return batch_tensor_descriptor(hidden, span.dtype, span.compression); };
    m.emplace_back(Value::str("forward_schema"),
                   Value::tuple({Value::tuple({btd_hidden()}), Value::map({})}));
    m.emplace_back(Value::str("outputs_schema"), Value::tuple({btd_hidden()}));
    m.emplace_back(Value::str("keyword_names"), Value::tuple({}));
    m.emplace_back(
        Value::str("inference_schema"),
        Value::tuple(
            {Value::tuple({btd_hidden(), batch_tensor_descriptor({-1}, span.dtype, pb::NONE),
                           batch_tensor_descriptor({-1}, DType::int64, pb::NONE)}),
             Value::map({})}));
  }
  auto bytes = hivemind::msgpack_encode(Value::map(std::move(m)));
  if (!bytes) return bytes.error();
  pb::ExpertInfo out;
  out.set_serialized_info(hivemind::to_string(*bytes));
  return out;
}

Result<pb::Tensor> serialize_output(const HostTensor& out, DType dtype,
                                    CompressionType compression) {
  hivemind::SerializeOptions opt;
  opt.legacy_bfloat16 = false;
  if (out.dtype == dtype) return hivemind::serialize_tensor(out, compression, opt);
  if (out.dtype != DType::float32 || (dtype != DType::bfloat16 && dtype != DType::float16))
    return make_error(Errc::unsupported, "cannot cast output " +
                                             std::string(hivemind::dtype_name(out.dtype)) + " to " +
                                             std::string(hivemind::dtype_name(dtype)));
  const auto floats = out.to_floats();
  HostTensor cast;
  cast.dtype = dtype;
  cast.shape = out.shape;
  cast.data.resize(floats.size() * 2);
  for (std::size_t i = 0; i < floats.size(); ++i) {
    const std::uint16_t h = dtype == DType::bfloat16 ? hivemind::float_to_bfloat16(floats[i])
                                                     : hivemind::float_to_half(floats[i]);
    cast.data[2 * i] = static_cast<std::uint8_t>(h & 0xFF);
    cast.data[2 * i + 1] = static_cast<std::uint8_t>(h >> 8);
  }
  return hivemind::serialize_tensor(cast, compression, opt);
}

Result<pb::ExpertResponse> build_step_response(const HostTensor& out, const SpanSchema& span) {
  auto t = serialize_output(out, span.dtype, span.compression);
  if (!t) return t.error();
  pb::ExpertResponse r;
  *r.add_tensors() = std::move(*t);
  return r;
}

Result<pb::ExpertResponse> build_forward_response(const HostTensor& out, const SpanSchema& span,
                                                  const RequestMetadata& meta) {
  CompressionType c = span.compression;
  if (meta.output_compression) {
    if (meta.output_compression->size() != 1)
      return make_error(Errc::rejected, "output_compression must have one entry for forward");
    c = static_cast<CompressionType>(meta.output_compression->front());
  }
  auto t = serialize_output(out, span.dtype, c);
  if (!t) return t.error();
  pb::ExpertResponse r;
  *r.add_tensors() = std::move(*t);
  return r;
}

std::vector<pb::ExpertRequest> split_stream_request(const pb::ExpertRequest& whole,
                                                    std::size_t part_bytes) {
  std::vector<pb::ExpertRequest> out;
  for (const auto& t : whole.tensors()) {
    for (auto& part : hivemind::split_for_streaming(t, part_bytes)) {
      pb::ExpertRequest r;
      r.set_uid(whole.uid());
      *r.add_tensors() = std::move(part);
      r.set_metadata(whole.metadata());
      out.push_back(std::move(r));
    }
  }
  return out;
}

Result<pb::ExpertRequest> assemble_stream_request(const std::vector<pb::ExpertRequest>& parts,
                                                  std::size_t max_parts,
                                                  std::size_t max_buffer_bytes) {
  if (parts.empty()) return make_error(Errc::truncated, "rpc_forward_stream: no messages");
  if (parts.size() > max_parts)
    return make_error(Errc::too_large,
                      "rpc_forward_stream: more than " + std::to_string(max_parts) + " messages");
  std::vector<pb::Tensor> flat;
  for (const auto& p : parts) {
    if (p.uid() != parts.front().uid())
      return make_error(Errc::rejected, "rpc_forward_stream: uids differ between messages");
    for (const auto& t : p.tensors()) flat.push_back(t);
  }
  auto grouped = hivemind::group_streamed_parts(flat, max_buffer_bytes);
  if (!grouped) return grouped.error();
  pb::ExpertRequest r;
  r.set_uid(parts.front().uid());
  r.set_metadata(parts.front().metadata());
  for (auto& t : *grouped) *r.add_tensors() = std::move(t);
  return r;
}

std::vector<pb::ExpertResponse> split_stream_response(const pb::ExpertResponse& whole,
                                                      std::size_t part_bytes) {
  std::vector<pb::ExpertResponse> out;
  for (const auto& t : whole.tensors()) {
    for (auto& part : hivemind::split_for_streaming(t, part_bytes)) {
      pb::ExpertResponse r;
      *r.add_tensors() = std::move(part);
      out.push_back(std::move(r));
    }
  }
  return out;
}

Result<pb::ExpertRequest> build_push_request(const pb::ExpertRequest& step,
                                             const RequestMetadata& meta, const pb::Tensor& output,
                                             const std::string& dht_prefix) {
  if (!meta.next_servers || meta.next_servers->empty())
    return make_error(Errc::rejected, "rpc_push: metadata has no next_servers");
  const NextServer& next = meta.next_servers->front();
  if (next.end > static_cast<std::int64_t>(UINT32_MAX))
    return make_error(Errc::rejected, "rpc_push: block index out of range");
  RequestMetadata pushed = meta;
  Value::Array rest;
  for (std::size_t i = 1; i < meta.next_servers->size(); ++i) {
    const auto& s = (*meta.next_servers)[i];
    rest.push_back(Value::tuple({Value::str(s.peer_id), Value::str(s.session_id),
                                 Value::integer(s.start), Value::integer(s.end)}));
  }
  if (auto s = pushed.set("session_id", Value::str(next.session_id)); !s) return s.error();
  if (auto s = pushed.set("next_servers", Value::array(std::move(rest))); !s) return s.error();
  if (auto s = pushed.set("pushed", Value::boolean(true)); !s) return s.error();
  pb::ExpertRequest r;
  r.set_uid(chain_uid(dht_prefix, static_cast<std::uint32_t>(next.start),
                      static_cast<std::uint32_t>(next.end)));
  *r.add_tensors() = output;
  for (int i = 1; i < step.tensors_size(); ++i) *r.add_tensors() = step.tensors(i);
  r.set_metadata(hivemind::to_string(pushed.encode()));
  return r;
}

}  // namespace kwaai::p2p::petals
