#include "p2p/libp2p/host/stream_io.hpp"

#include <array>

#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p {

asio::awaitable<Result<std::optional<Bytes>>> read_delimited(YamuxStream& s, std::size_t max_body) {
  std::array<std::uint8_t, kMaxUvarintBytes> prefix{};
  std::size_t used = 0;
  std::uint64_t len = 0;
  for (;;) {
    if (used == prefix.size()) co_return make_error(Errc::kMalformed, "length prefix too long");
    auto n = co_await s.read_some(std::span<std::uint8_t>(prefix.data() + used, 1));
    if (!n) co_return std::move(n).error();
    if (*n == 0) {
      if (used == 0) co_return std::optional<Bytes>{};
      co_return make_error(Errc::kClosed, "eof inside a length prefix");
    }
    ++used;
    if ((prefix[used - 1] & 0x80) == 0) {
      auto v = decode_uvarint(ByteView(prefix.data(), used));
      if (!v) co_return std::move(v).error();
      len = v->value;
      break;
    }
  }
  if (len > max_body)
    co_return make_error(Errc::kTooLarge, "message of " + std::to_string(len) +
                                              " bytes exceeds limit " + std::to_string(max_body));
  Bytes body(static_cast<std::size_t>(len));
  if (auto st = co_await s.read_exact(body); !st) co_return std::move(st).error();
  co_return std::optional<Bytes>(std::move(body));
}

asio::awaitable<Status> write_delimited(YamuxStream& s, ByteView body) {
  co_return co_await s.write(encode_delimited(body));
}

}  // namespace kwaai::p2p::libp2p
