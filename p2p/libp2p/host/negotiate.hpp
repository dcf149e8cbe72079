// Drives the IO-free multistream-select negotiators over a stream (raw TCP, Noise, or a Yamux
// stream). Bytes read past the selected protocol's line are handed back with `unread`, so
// pipelined (lazy) peers lose nothing.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/libp2p/host/asio.hpp"
#include "p2p/libp2p/multistream.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

// Reader/Writer: any object with `read_some(span) -> awaitable<Result<size_t>>`, and
// `write(ByteView) -> awaitable<Status>`; unread(ByteView) puts leftover bytes back.
template <class Reader, class Writer, class Unread>
asio::awaitable<Result<std::string>> negotiate_outbound(Reader& reader, Writer& writer,
                                                        std::vector<std::string> protocols,
                                                        Unread unread) {
  multistream::Initiator ini(std::move(protocols));
  auto p = ini.start();
  if (!p) co_return std::move(p).error();
  // Header and first proposal in one write: js's responder waits for our header first.
  if (auto st = co_await writer.write(p->to_send); !st) co_return std::move(st).error();
  std::array<std::uint8_t, 1024> buf{};
  for (;;) {
    auto n = co_await reader.read_some(buf);
    if (!n) co_return std::move(n).error();
    if (*n == 0) co_return make_error(Errc::kClosed, "multistream: eof during negotiation");
    auto step = ini.on_data(ByteView(buf.data(), *n));
    if (!step) co_return std::move(step).error();
    if (!step->to_send.empty())
      if (auto st = co_await writer.write(step->to_send); !st) co_return std::move(st).error();
    if (step->done) {
      unread(ByteView(step->leftover));
      co_return std::move(step->selected);
    }
  }
}

template <class Reader, class Writer, class Unread>
asio::awaitable<Result<std::string>> negotiate_inbound(
    Reader& reader, Writer& writer, std::function<bool(std::string_view)> supported,
    std::vector<std::string> list, Unread unread) {
  multistream::Responder resp(std::move(supported), std::move(list));
  std::array<std::uint8_t, 1024> buf{};
  for (;;) {
    auto n = co_await reader.read_some(buf);
    if (!n) co_return std::move(n).error();
    if (*n == 0) co_return make_error(Errc::kClosed, "multistream: eof during negotiation");
    auto step = resp.on_data(ByteView(buf.data(), *n));
    if (!step) co_return std::move(step).error();
    if (!step->to_send.empty())
      if (auto st = co_await writer.write(step->to_send); !st) co_return std::move(st).error();
    if (step->done) {
      unread(ByteView(step->leftover));
      co_return std::move(step->selected);
    }
  }
}

}  // namespace kwaai::p2p::libp2p
