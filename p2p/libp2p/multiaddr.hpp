// Multiaddr text ("/ip4/1.2.3.4/tcp/4001/p2p/12D3…") and binary (uvarint code ‖ value)*.
//
// Supported protocols: ip4, ip6, tcp, udp, dns, dns4, dns6, dnsaddr, p2p (text alias "ipfs"),
// and the value-less quic, quic-v1, p2p-circuit, ws, wss, tls, noise, webtransport,
// webrtc-direct (round-tripped so records seen in the wild survive). Anything else is
// kUnsupported: binary multiaddrs cannot be skipped past an unknown code, so callers drop
// that one address (identify listenAddrs) rather than failing the whole message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/libp2p/bytes.hpp"
#include "p2p/libp2p/peer_id.hpp"
#include "p2p/libp2p/result.hpp"

namespace kwaai::p2p::libp2p {

namespace multiaddr_code {
inline constexpr std::uint64_t kIp4 = 4;
inline constexpr std::uint64_t kTcp = 6;
inline constexpr std::uint64_t kIp6 = 41;
inline constexpr std::uint64_t kDns = 53;
inline constexpr std::uint64_t kDns4 = 54;
inline constexpr std::uint64_t kDns6 = 55;
inline constexpr std::uint64_t kDnsaddr = 56;
inline constexpr std::uint64_t kUdp = 273;
inline constexpr std::uint64_t kWebrtcDirect = 280;
inline constexpr std::uint64_t kP2pCircuit = 290;
inline constexpr std::uint64_t kP2p = 421;
inline constexpr std::uint64_t kTls = 448;
inline constexpr std::uint64_t kNoise = 454;
inline constexpr std::uint64_t kQuic = 460;
inline constexpr std::uint64_t kQuicV1 = 461;
inline constexpr std::uint64_t kWebtransport = 465;
inline constexpr std::uint64_t kWs = 477;
inline constexpr std::uint64_t kWss = 478;
}  // namespace multiaddr_code

// Limits on what we accept from a peer.
inline constexpr std::size_t kMaxMultiaddrBytes = 1024;
inline constexpr std::size_t kMaxMultiaddrComponents = 32;
inline constexpr std::size_t kMaxDnsNameLength = 255;

struct MultiaddrComponent {
  std::uint64_t code;
  Bytes value;  // binary value without the length prefix (empty for value-less protocols)
  bool operator==(const MultiaddrComponent&) const = default;
};

struct HostPort {
  std::string host;  // dotted quad, RFC 5952 IPv6 text, or a DNS name
  std::uint16_t port;
  enum class Kind : std::uint8_t { kIp4, kIp6, kDns, kDns4, kDns6 } kind;
};

class Multiaddr {
 public:
  Multiaddr() = default;
  static Result<Multiaddr> from_string(std::string_view text);
  static Result<Multiaddr> from_bytes(ByteView bytes);
  // Builds /ip4|ip6/<ip>/tcp/<port> from a literal IP address string.
  static Result<Multiaddr> from_ip_tcp(std::string_view ip, std::uint16_t port);

  std::string to_string() const;
  Bytes to_bytes() const;

  const std::vector<MultiaddrComponent>& components() const { return components_; }
  bool empty() const { return components_.empty(); }

  // First (host, port) pair: ip4|ip6|dns|dns4|dns6 followed by tcp. kUnsupported otherwise.
  Result<HostPort> tcp_endpoint() const;
  // PeerId of the last /p2p component, if any.
  std::optional<PeerId> peer_id() const;
  // Copy without a trailing /p2p/<id> (identify listenAddrs carry no /p2p suffix).
  Multiaddr without_peer_id() const;
  // Copy with /p2p/<id> appended.
  Multiaddr with_peer_id(const PeerId& id) const;
  bool has(std::uint64_t code) const;

  bool operator==(const Multiaddr&) const = default;

 private:
  explicit Multiaddr(std::vector<MultiaddrComponent> c) : components_(std::move(c)) {}
  std::vector<MultiaddrComponent> components_;
};

}  // namespace kwaai::p2p::libp2p
