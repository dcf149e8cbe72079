// Delimited (uvarint length-prefixed) messages over a Yamux stream, as identify and kad use.
#pragma once

#include <optional>

#include "p2p/libp2p/delimited.hpp"
#include "p2p/libp2p/host/yamux_session.hpp"

namespace kwaai::p2p::libp2p {

// One message body; nullopt on a clean EOF before its first byte. kTooLarge past max_body
// (checked before the body is read), kClosed on EOF inside a message.
asio::awaitable<Result<std::optional<Bytes>>> read_delimited(YamuxStream& s, std::size_t max_body);
asio::awaitable<Status> write_delimited(YamuxStream& s, ByteView body);

}  // namespace kwaai::p2p::libp2p
