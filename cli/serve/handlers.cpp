// rpc_info, rpc_forward(_stream), rpc_push and the backward refusals. Decoding and validation
// are p2p/petals' (IO-free); this file moves bytes, schedules compute and answers.
#include "cli/serve/handlers.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "p2p/petals/forward_request.hpp"
#include "p2p/petals/uids.hpp"

namespace kwaai::serve {

namespace {

constexpr const char* kBackwardRefusal =
    "rpc_backward is not supported by this server yet (kwaainet serves inference and forward "
    "only)";

hm::Bytes to_bytes(const google::protobuf::MessageLite& m) {
  hm::Bytes out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

// A forward pass over exactly the requested blocks (any consecutive run of the span, as
// Petals' requested_backends), positions 0..T-1, with a temporary cache of those blocks.
asio::awaitable<petals::Result<hm::pb::ExpertResponse>> run_forward(
    PetalsServer& srv, PetalsServer::Impl& im, const hm::pb::ExpertRequest& req) {
  auto in = petals::decode_forward_request(req, srv.schema(), srv.config().limits);
  if (!in) co_return in.error();
  if (in->prompts)
    co_return petals::make_error(petals::Errc::rejected,
                                 "deep prompts are not supported by this server yet");
  const auto& shape = in->hidden_states.shape;
  const std::int64_t b = shape.at(0), t = shape.at(1), h = shape.at(2);
  std::vector<float> out;
  try {
    if (b * t > 0) {
      auto hidden = std::make_shared<std::vector<float>>(in->hidden_states.to_floats());
      const auto t0 = std::chrono::steady_clock::now();
      const std::int64_t first = in->start_block, last = in->end_block;
      std::function<std::vector<float>()> job = [&exec = im.exec, hidden, b, t, first, last] {
        auto cache = exec.make_cache(b, t, first, last);
        return exec.forward(*hidden, b, t, cache, 0, first, last);
      };
      auto result = co_await on_worker<std::vector<float>>(im.worker, std::move(job));
      out = std::move(result);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      im.add_stats([&](ServerStats& s) {
        ++s.forward_calls;
        s.compute_seconds += secs;
      });
    }
  } catch (...) {
    co_return petals::make_error(petals::Errc::rejected, describe(std::current_exception()));
  }
  auto tensor = hm::HostTensor::from_floats({b, t, h}, out);
  co_return petals::build_forward_response(tensor, srv.schema(), in->metadata);
}

asio::awaitable<net::UnaryOutcome> on_info(std::shared_ptr<PetalsServer> srv, hm::Bytes request) {
  hm::pb::ExpertUID uid;
  if (!uid.ParseFromArray(request.data(), static_cast<int>(request.size())))
    co_return net::UnaryOutcome::failure("rpc_info: malformed ExpertUID");
  petals::RpcInfo info;
  info.dht_client_mode = srv->impl().dht ? srv->impl().dht->client_mode() : false;
  info.cache_tokens_available = srv->cache_tokens_available();
  auto resp = petals::build_rpc_info_response(uid, info, srv->schema());
  if (!resp) co_return net::UnaryOutcome::failure(resp.error().message);
  co_return net::UnaryOutcome::success(to_bytes(*resp));
}

asio::awaitable<net::UnaryOutcome> on_forward(std::shared_ptr<PetalsServer> srv,
                                              hm::Bytes request) {
  hm::pb::ExpertRequest req;
  if (!req.ParseFromArray(request.data(), static_cast<int>(request.size())))
    co_return net::UnaryOutcome::failure("rpc_forward: malformed ExpertRequest");
  auto resp = co_await run_forward(*srv, srv->impl(), req);
  if (!resp) co_return net::UnaryOutcome::failure("rpc_forward: " + resp.error().message);
  co_return net::UnaryOutcome::success(to_bytes(*resp));
}

asio::awaitable<void> on_forward_stream(std::shared_ptr<PetalsServer> srv,
                                        net::FramedStream& stream) {
  // The parts of one request, until the caller's END_OF_STREAM; bounded in count and bytes
  // (a whole request may carry at most max_batch_size tokens of float32 hidden states).
  const auto& lim = srv->config().limits;
  const std::size_t max_bytes =
      lim.max_batch_size * srv->schema().hidden_size * 4 * 2 + (std::size_t{1} << 20);
  std::vector<hm::pb::ExpertRequest> parts;
  std::size_t total = 0;
  for (;;) {
    auto f = co_await stream.read();
    if (!f) co_return;                                  // broken stream: nobody to answer
    if (!*f) break;                                     // EOF without END_OF_STREAM: take what came
    if ((*f)->marker == hm::FrameMarker::error) break;  // END_OF_STREAM
    total += (*f)->payload.size();
    if (total > max_bytes || parts.size() >= 4096) {
      co_await stream.write_error("rpc_forward_stream: request larger than this server accepts");
      co_return;
    }
    hm::pb::ExpertRequest part;
    if (!part.ParseFromArray((*f)->payload.data(), static_cast<int>((*f)->payload.size()))) {
      co_await stream.write_error("rpc_forward_stream: malformed ExpertRequest");
      co_return;
    }
    parts.push_back(std::move(part));
  }
  if (parts.empty()) {
    co_await stream.write_error("rpc_forward_stream: empty request");
    co_return;
  }
  auto whole = petals::assemble_stream_request(parts, 4096, max_bytes);
  if (!whole) {
    const std::string text = "rpc_forward_stream: " + whole.error().message;
    co_await stream.write_error(text);
    co_return;
  }
  auto resp = co_await run_forward(*srv, srv->impl(), *whole);
  if (!resp) {
    const std::string text = "rpc_forward_stream: " + resp.error().message;
    co_await stream.write_error(text);
    co_return;
  }
  for (const auto& part : petals::split_stream_response(*resp)) {
    const hm::Bytes bytes = to_bytes(part);
    if (!co_await stream.write_message(bytes)) co_return;
  }
}

// A pushed step for one of our sessions (the previous server of a chain computed it). Unknown
// sessions are ignored, as Petals does; the reply is always an empty ExpertResponse.
asio::awaitable<net::UnaryOutcome> on_push(std::shared_ptr<PetalsServer> srv, hm::Bytes request) {
  hm::pb::ExpertRequest req;
  if (!req.ParseFromArray(request.data(), static_cast<int>(request.size())))
    co_return net::UnaryOutcome::failure("rpc_push: malformed ExpertRequest");
  auto chain = petals::parse_chain_uid(req.uid());
  if (!chain) co_return net::UnaryOutcome::failure("rpc_push: " + chain.error().message);
  for (const auto& u : *chain)
    if (!srv->schema().serves(u.to_string()))
      co_return net::UnaryOutcome::failure("rpc_push: Remote peer does not serve " + u.to_string());
  auto meta = petals::parse_request_metadata(hm::ByteView(
      reinterpret_cast<const std::uint8_t*>(req.metadata().data()), req.metadata().size()));
  if (!meta) co_return net::UnaryOutcome::failure("rpc_push: " + meta.error().message);
  auto& im = srv->impl();
  if (meta->session_id) {
    auto it = im.by_session_id.find(*meta->session_id);
    if (it != im.by_session_id.end())
      if (auto live = it->second.lock(); live && live->inbox.size() < LiveSession::kMaxInbox) {
        live->inbox.push_back(std::move(req));
        live->notify();
      }
  }
  co_return net::UnaryOutcome::success(to_bytes(hm::pb::ExpertResponse{}));
}

}  // namespace

std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

void register_handlers(const std::shared_ptr<PetalsServer>& server, PetalsServer::Impl& im) {
  std::weak_ptr<PetalsServer> weak = server;
  const std::string p = kHandlerPrefix;
  auto unary = [weak](auto fn) {
    return [weak, fn](const lp::PeerId&, hm::Bytes request) -> asio::awaitable<net::UnaryOutcome> {
      auto srv = weak.lock();
      if (!srv || srv->impl().stopping)
        co_return net::UnaryOutcome::failure("server is shutting down");
      co_return co_await fn(srv, std::move(request));
    };
  };
  im.rpc->add_unary(p + "rpc_info", unary(on_info));
  im.rpc->add_unary(p + "rpc_forward", unary(on_forward));
  im.rpc->add_unary(p + "rpc_push", unary(on_push));
  im.rpc->add_unary(p + "rpc_backward",
                    [](const lp::PeerId&, hm::Bytes) -> asio::awaitable<net::UnaryOutcome> {
                      co_return net::UnaryOutcome::failure(kBackwardRefusal);
                    });
  im.rpc->add_stream(p + "rpc_backward_stream",
                     [](const lp::PeerId&, net::FramedStream& s) -> asio::awaitable<void> {
                       co_await s.write_error(kBackwardRefusal);
                     });
  im.rpc->add_stream(p + "rpc_forward_stream",
                     [weak](const lp::PeerId&, net::FramedStream& s) -> asio::awaitable<void> {
                       auto srv = weak.lock();
                       if (!srv || srv->impl().stopping) {
                         co_await s.write_error("server is shutting down");
                         co_return;
                       }
                       co_await on_forward_stream(srv, s);
                     });
  im.rpc->add_stream(
      p + "rpc_inference",
      [weak](const lp::PeerId& caller, net::FramedStream& s) -> asio::awaitable<void> {
        auto srv = weak.lock();
        if (!srv || srv->impl().stopping) {
          co_await s.write_error("server is shutting down");
          co_return;
        }
        co_await serve_inference(srv, caller, s);
      });
}

}  // namespace kwaai::serve
