// The TransformerConnectionHandler RPCs of a PetalsServer (handlers.cpp, inference.cpp).
#pragma once

#include <memory>

#include "cli/serve/server_impl.hpp"

namespace kwaai::serve {

// Registers rpc_info, rpc_inference, rpc_forward, rpc_forward_stream, rpc_backward,
// rpc_backward_stream and rpc_push on im.rpc. Handlers hold the server weakly.
void register_handlers(const std::shared_ptr<PetalsServer>& server, PetalsServer::Impl& im);

// rpc_inference: one stream = one session (inference.cpp).
asio::awaitable<void> serve_inference(std::shared_ptr<PetalsServer> srv, const lp::PeerId& caller,
                                      net::FramedStream& stream);

// Text of an exception for an error frame / unary error.
std::string describe(std::exception_ptr e);

}  // namespace kwaai::serve
