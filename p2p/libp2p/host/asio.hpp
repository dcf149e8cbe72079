// The Boost.Asio subset the host uses, in one place. Boost 1.74's awaitable.hpp uses
// std::exchange without including <utility>, so that include must come first with GCC 12.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kwaai::p2p::libp2p {
namespace asio = boost::asio;
}  // namespace kwaai::p2p::libp2p
