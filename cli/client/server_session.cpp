#include "cli/client/server_session.hpp"

#include <cstring>
#include <random>

#include "p2p/hivemind/framing.hpp"
#include "p2p/hivemind/msgpack_codec.hpp"
#include "p2p/hivemind/tensor.hpp"
#include "p2p/libp2p/host/event.hpp"
#include "p2p/petals/metadata.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::client {

namespace hm = kwaai::p2p::hivemind;

std::string uuid4_string() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (std::uint64_t{std::random_device{}()} << 32)};
  std::uint8_t b[16];
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[b[i] >> 4];
    s += hex[b[i] & 15];
  }
  return s;
}

lp::Result<WireFormat> parse_inference_format(hm::ByteView serialized_info) {
  auto bad = [](const std::string& why) {
    return lp::make_error(lp::Errc::kMalformed, "rpc_info: " + why);
  };
  auto info = hm::msgpack_decode(serialized_info);
  if (!info) return bad(info.error().what());
  const hm::Value* schema = info->find("inference_schema");
  // ((hidden_states, prompts, hypo_ids), {}) — args then kwargs, as pack_args_kwargs makes.
  if (!schema || schema->kind() != hm::Value::Kind::tuple || schema->items().empty())
    return bad("no inference_schema tuple");
  const hm::Value& args = schema->items()[0];
  if ((args.kind() != hm::Value::Kind::tuple && args.kind() != hm::Value::Kind::array) ||
      args.items().empty())
    return bad("inference_schema has no positional descriptors");
  const hm::Value& desc = args.items()[0];
  if (desc.kind() != hm::Value::Kind::tensor_descriptor || desc.items().empty())
    return bad("hidden_states schema is not a BatchTensorDescriptor");
  const hm::Value& fields = desc.items()[0];
  const hm::Value* dtype = fields.find("dtype");
  const hm::Value* compression = fields.find("compression");
  if (!dtype || dtype->kind() != hm::Value::Kind::str) return bad("descriptor without dtype");
  std::string name = dtype->as_str();
  if (name.rfind("torch.", 0) == 0) name.erase(0, 6);
  auto dt = hm::parse_dtype(name);
  if (!dt || !hm::dtype_is_float(*dt)) return bad("unusable hidden_states dtype " + name);
  WireFormat w;
  w.dtype = *dt;
  if (compression && compression->is_int()) {
    const auto c = compression->as_int();
    if (!hm::pb::CompressionType_IsValid(static_cast<int>(c)))
      return bad("unknown compression " + std::to_string(c));
    w.compression = static_cast<hm::CompressionType>(c);
  }
  return w;
}

asio::awaitable<lp::Result<WireFormat>> fetch_inference_format(lp::Host& host,
                                                               const std::string& peer,
                                                               const std::string& uid,
                                                               std::chrono::milliseconds timeout) {
  auto pid = lp::PeerId::from_string(peer);
  if (!pid) co_return lp::make_error(lp::Errc::kMalformed, "peer id " + peer);
  hm::pb::ExpertUID req;
  req.set_uid(uid);
  std::string wire;
  req.SerializeToString(&wire);
  const hm::Bytes bytes(wire.begin(), wire.end());
  net::CallOptions opt;
  opt.timeout = timeout;
  // Named: no temporaries bound to references across co_await (GCC 12 frees them early).
  const std::string name = "TransformerConnectionHandler.rpc_info";
  auto answer = co_await net::call_unary(host, *pid, name, bytes, opt);
  if (!answer) co_return std::move(answer).error();
  if (answer->is_error)
    co_return lp::make_error(lp::Errc::kProtocol, "rpc_info at " + peer + ": " + answer->error);
  hm::pb::ExpertInfo info;
  if (!info.ParseFromArray(answer->response.data(), static_cast<int>(answer->response.size())))
    co_return lp::make_error(lp::Errc::kMalformed, "rpc_info at " + peer + ": bad ExpertInfo");
  const std::string& si = info.serialized_info();
  co_return parse_inference_format(
      hm::ByteView(reinterpret_cast<const std::uint8_t*>(si.data()), si.size()));
}

namespace {

// Petals casts every input to its schema dtype before serializing (tensor.to(proto.dtype)).
hm::HostTensor cast_floats(std::vector<std::int64_t> shape, const std::vector<float>& v,
                           hm::DType dtype) {
  if (dtype == hm::DType::float32) return hm::HostTensor::from_floats(std::move(shape), v);
  hm::HostTensor t{dtype, std::move(shape), {}, false};
  const std::size_t es = hm::dtype_size(dtype);
  t.data.resize(v.size() * es);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (dtype == hm::DType::float64) {
      const double d = v[i];
      std::memcpy(t.data.data() + i * es, &d, es);
      continue;
    }
    const std::uint16_t h =
        dtype == hm::DType::bfloat16 ? hm::float_to_bfloat16(v[i]) : hm::float_to_half(v[i]);
    t.data[i * 2] = static_cast<std::uint8_t>(h & 0xff);
    t.data[i * 2 + 1] = static_cast<std::uint8_t>(h >> 8);
  }
  return t;
}

// Opening may hang in a dial the host cannot cancel, so it runs in its own coroutine and we
// stop waiting at the deadline (a stream that arrives later is reset by its owner state).
struct OpenState {
  explicit OpenState(const asio::any_io_executor& ex) : done(ex) {}
  lp::Event done;
  std::optional<lp::Result<lp::NegotiatedStream>> result;
  bool abandoned = false;
};

}  // namespace

asio::awaitable<lp::Result<std::unique_ptr<ServerSession>>> ServerSession::open(
    lp::Host& host, RemoteSpan span, std::string dht_prefix, std::int64_t max_length,
    SessionTimeouts t) {
  auto peer = lp::PeerId::from_string(span.peer);
  if (!peer) co_return lp::make_error(lp::Errc::kMalformed, "peer id " + span.peer);
  auto st = std::make_shared<OpenState>(host.executor());
  auto hostp = host.shared_from_this();
  asio::co_spawn(
      host.executor(),
      [st, hostp, p = *peer]() -> asio::awaitable<void> {
        std::vector<std::string> protocols{kRpcInference};
        auto r = co_await hostp->new_stream(p, std::move(protocols));
        if (st->abandoned) {
          if (r) r->stream->reset();
          co_return;
        }
        st->result.emplace(std::move(r));
        st->done.notify();
      },
      asio::detached);
  const auto deadline = std::chrono::steady_clock::now() + t.connect;
  while (!st->result) {
    co_await st->done.wait_until(deadline);
    if (!st->result && std::chrono::steady_clock::now() >= deadline) {
      st->abandoned = true;
      co_return lp::make_error(lp::Errc::kTimeout, "rpc_inference to " + span.peer +
                                                       ": no stream within " +
                                                       std::to_string(t.connect.count()) + " ms");
    }
  }
  if (!*st->result) co_return std::move(*st->result).error();
  auto stream = (*st->result)->stream;
  co_return std::unique_ptr<ServerSession>(new ServerSession(
      host, std::move(span), std::move(dht_prefix), max_length, t, std::move(stream)));
}

ServerSession::ServerSession(lp::Host& host, RemoteSpan span, std::string dht_prefix,
                             std::int64_t max_length, SessionTimeouts t, lp::YamuxStreamPtr stream)
    : host_(host),
      span_(std::move(span)),
      dht_prefix_(std::move(dht_prefix)),
      uid_(p2p::petals::chain_uid(dht_prefix_, span_.start, span_.end)),
      session_id_(uuid4_string()),
      max_length_(max_length),
      t_(t),
      stream_(std::move(stream), t.max_frame_bytes) {}

ServerSession::~ServerSession() {
  // Destroyed without close() (an error path): the server must not keep our cache.
  if (!closed_) stream_.reset();
}

asio::awaitable<lp::Result<std::vector<float>>> ServerSession::step(
    const std::vector<float>& hidden, std::int64_t batch, std::int64_t tokens,
    std::int64_t hidden_size) {
  auto fail = [this](lp::Errc code, std::string what) {
    broken_ = true;
    stream_.reset();
    return lp::make_error(code, "rpc_inference " + span_.peer + " [" + std::to_string(span_.start) +
                                    ":" + std::to_string(span_.end) + "): " + std::move(what));
  };
  if (broken_ || closed_) co_return fail(lp::Errc::kState, "session is no longer usable");
  if (static_cast<std::int64_t>(hidden.size()) != batch * tokens * hidden_size)
    co_return fail(lp::Errc::kState, "hidden has " + std::to_string(hidden.size()) + " floats");

  p2p::petals::ClientStepMetadata meta;
  meta.session_id = session_id_;
  meta.step_id = uuid4_string();
  if (!stepped_) meta.max_length = max_length_;
  meta.active_adapter = active_adapter_;
  meta.start_from_position = position_;
  meta.n_tensors = 3;
  hm::pb::ExpertRequest req;
  req.set_uid(uid_);
  // hidden_states, then Petals' DUMMY (float32 [0]) prompts and DUMMY_INT64 hypo_ids.
  const hm::HostTensor x = cast_floats({batch, tokens, hidden_size}, hidden, wire_.dtype);
  hm::HostTensor prompts{wire_.dtype, {0}, {}, false};
  hm::HostTensor hypo{hm::DType::int64, {0}, {}, false};
  const hm::HostTensor* inputs[] = {&x, &prompts, &hypo};
  // Petals (USE_LEGACY_BFLOAT16=0) sends bfloat16 as raw 2-byte values.
  hm::SerializeOptions so;
  so.legacy_bfloat16 = false;
  for (const auto* t : inputs) {
    auto s = hm::serialize_tensor(*t, t == &x ? wire_.compression : hm::pb::NONE, so);
    if (!s) co_return fail(lp::Errc::kMalformed, "serialize: " + s.error().what());
    *req.add_tensors() = std::move(*s);
  }
  const auto md = p2p::petals::client_inference_metadata(meta).encode();
  req.set_metadata(std::string(md.begin(), md.end()));
  std::string wire;
  req.SerializeToString(&wire);

  lp::Watchdog dog(host_.executor(), t_.step, [this] { stream_.reset(); });
  const hm::Bytes payload(wire.begin(), wire.end());
  if (auto w = co_await stream_.write_message(payload); !w)
    co_return fail(w.error().code, "send: " + w.error().to_string());
  auto f = co_await stream_.read();
  const bool timed_out = dog.fired();
  dog.disarm();
  if (timed_out)
    co_return fail(lp::Errc::kTimeout,
                   "no answer within " + std::to_string(t_.step.count()) + " ms");
  if (!f) co_return fail(f.error().code, "read: " + f.error().to_string());
  if (!*f) co_return fail(lp::Errc::kClosed, "server closed the stream without an answer");
  if ((*f)->marker == hm::FrameMarker::error) {
    auto text = hm::parse_rpc_error((*f)->payload);
    co_return fail(lp::Errc::kProtocol,
                   "server error: " + (text ? *text : std::string("<unreadable RPCError>")));
  }
  hm::pb::ExpertResponse resp;
  if (!resp.ParseFromArray((*f)->payload.data(), static_cast<int>((*f)->payload.size())))
    co_return fail(lp::Errc::kMalformed, "undecodable ExpertResponse");
  if (resp.tensors_size() != 1)
    co_return fail(lp::Errc::kProtocol,
                   "expected 1 output tensor, got " + std::to_string(resp.tensors_size()));
  hm::DeserializeLimits lim;
  lim.max_elements = static_cast<std::size_t>(batch * tokens * hidden_size);
  auto out = hm::deserialize_tensor(resp.tensors(0), lim);
  if (!out) co_return fail(lp::Errc::kMalformed, "output tensor: " + out.error().what());
  // Petals asserts output shape == input shape.
  if (out->shape != std::vector<std::int64_t>{batch, tokens, hidden_size} ||
      !hm::dtype_is_float(out->dtype))
    co_return fail(lp::Errc::kProtocol, "output " + std::string(hm::dtype_name(out->dtype)) +
                                            " of the wrong shape for [" + std::to_string(batch) +
                                            ", " + std::to_string(tokens) + ", " +
                                            std::to_string(hidden_size) + "]");
  stepped_ = true;
  position_ += tokens;
  co_return out->to_floats();
}

asio::awaitable<void> ServerSession::close() {
  if (closed_) co_return;
  closed_ = true;
  if (broken_) {
    stream_.reset();
    co_return;
  }
  // inference_session.py close(): an ExpertRequest with no uid and no tensors, then the end of
  // our side; the server then frees the cache and ends the stream.
  lp::Watchdog dog(host_.executor(), t_.close, [this] { stream_.reset(); });
  hm::pb::ExpertRequest empty;
  std::string wire;
  empty.SerializeToString(&wire);
  const hm::Bytes payload(wire.begin(), wire.end());
  if (!(co_await stream_.write_message(payload)) || !(co_await stream_.write_end_of_stream())) {
    stream_.reset();
    co_return;
  }
  // Drain until EOF (or the watchdog's reset); responses after close carry nothing we need.
  for (int i = 0; i < 4; ++i) {
    auto f = co_await stream_.read();
    if (!f || !*f) break;
  }
  dog.disarm();
  (void)stream_.close_write();
}

}  // namespace kwaai::client
