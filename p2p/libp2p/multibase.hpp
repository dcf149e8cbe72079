// base58btc (Bitcoin alphabet) and RFC 4648 base32 lower-case without padding: the two
// multibase encodings libp2p uses for peer ids (legacy text form and CIDv1 'b' form).
#pragma once

#include <string>
#include <string_view>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

// Inputs are capped (quadratic algorithm; peer ids are < 100 bytes).
inline constexpr std::size_t kMaxBase58Input = 1024;

std::string base58btc_encode(ByteView data);
Result<Bytes> base58btc_decode(std::string_view text);

std::string base32_lower_encode(ByteView data);
// Lower-case alphabet only, no padding; rejects non-zero trailing bits (non-canonical).
Result<Bytes> base32_lower_decode(std::string_view text);

}  // namespace kwaai::p2p::libp2p
