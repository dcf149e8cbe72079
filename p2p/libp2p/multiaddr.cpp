#include "p2p/libp2p/multiaddr.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>

#include "p2p/libp2p/varint.hpp"

namespace kwaai::p2p::libp2p {
namespace {

using namespace multiaddr_code;

enum class ValueKind : std::uint8_t { kNone, kIp4, kIp6, kPort, kDnsName, kPeerId };

struct ProtocolInfo {
  std::uint64_t code;
  std::string_view name;
  ValueKind kind;
};

constexpr std::array<ProtocolInfo, 18> kProtocols{{
    {kIp4, "ip4", ValueKind::kIp4},
    {kTcp, "tcp", ValueKind::kPort},
    {kIp6, "ip6", ValueKind::kIp6},
    {kDns, "dns", ValueKind::kDnsName},
    {kDns4, "dns4", ValueKind::kDnsName},
    {kDns6, "dns6", ValueKind::kDnsName},
    {kDnsaddr, "dnsaddr", ValueKind::kDnsName},
    {kUdp, "udp", ValueKind::kPort},
    {kWebrtcDirect, "webrtc-direct", ValueKind::kNone},
    {kP2pCircuit, "p2p-circuit", ValueKind::kNone},
    {kP2p, "p2p", ValueKind::kPeerId},
    {kTls, "tls", ValueKind::kNone},
    {kNoise, "noise", ValueKind::kNone},
    {kQuic, "quic", ValueKind::kNone},
    {kQuicV1, "quic-v1", ValueKind::kNone},
    {kWebtransport, "webtransport", ValueKind::kNone},
    {kWs, "ws", ValueKind::kNone},
    {kWss, "wss", ValueKind::kNone},
}};

const ProtocolInfo* by_code(std::uint64_t code) {
  for (const auto& p : kProtocols)
    if (p.code == code) return &p;
  return nullptr;
}

const ProtocolInfo* by_name(std::string_view name) {
  if (name == "ipfs") return by_code(kP2p);  // legacy alias, printed as p2p
  for (const auto& p : kProtocols)
    if (p.name == name) return &p;
  return nullptr;
}

Status check_dns_name(ByteView v) {
  if (v.empty()) return make_error(Errc::kMalformed, "multiaddr: empty DNS name");
  if (v.size() > kMaxDnsNameLength) return make_error(Errc::kTooLarge, "multiaddr: DNS name > 255");
  for (std::uint8_t c : v)
    if (c == '/' || c == 0)
      return make_error(Errc::kMalformed, "multiaddr: '/' or NUL in DNS name");
  return {};
}

// Parses the text value of one component into its binary value.
Result<Bytes> value_from_text(const ProtocolInfo& p, std::string_view text) {
  switch (p.kind) {
    case ValueKind::kNone:
      return Bytes{};
    case ValueKind::kIp4:
    case ValueKind::kIp6: {
      const bool v4 = p.kind == ValueKind::kIp4;
      std::string s(text);
      Bytes out(v4 ? 4 : 16);
      if (s.size() > 64 || inet_pton(v4 ? AF_INET : AF_INET6, s.c_str(), out.data()) != 1)
        return make_error(Errc::kMalformed,
                          "multiaddr: invalid " + std::string(p.name) + " address");
      return out;
    }
    case ValueKind::kPort: {
      unsigned port = 0;
      if (text.empty() || text.size() > 5)
        return make_error(Errc::kMalformed, "multiaddr: invalid port");
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
      if (ec != std::errc() || ptr != text.data() + text.size() || port > 65535)
        return make_error(Errc::kMalformed, "multiaddr: invalid port");
      return Bytes{static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port & 0xff)};
    }
    case ValueKind::kDnsName: {
      if (auto st = check_dns_name(as_bytes(text)); !st) return std::move(st).error();
      return Bytes(text.begin(), text.end());
    }
    case ValueKind::kPeerId: {
      auto id = PeerId::from_string(text);
      if (!id) return make_error(id.error().code, "multiaddr: " + id.error().message);
      return id->bytes();
    }
  }
  return make_error(Errc::kUnsupported, "multiaddr: value kind");
}

std::string value_to_text(const ProtocolInfo& p, const Bytes& v) {
  switch (p.kind) {
    case ValueKind::kNone:
      return {};
    case ValueKind::kIp4:
    case ValueKind::kIp6: {
      char buf[INET6_ADDRSTRLEN] = {};
      inet_ntop(p.kind == ValueKind::kIp4 ? AF_INET : AF_INET6, v.data(), buf, sizeof buf);
      return buf;
    }
    case ValueKind::kPort:
      return std::to_string(unsigned{v[0]} << 8 | v[1]);
    case ValueKind::kDnsName:
      return std::string(as_chars(v));
    case ValueKind::kPeerId: {
      auto id = PeerId::from_bytes(v);  // validated on construction
      return id ? id->to_base58() : std::string();
    }
  }
  return {};
}

}  // namespace

Result<Multiaddr> Multiaddr::from_string(std::string_view text) {
  if (text.size() > 4 * kMaxMultiaddrBytes)
    return make_error(Errc::kTooLarge, "multiaddr text too long");
  if (text.empty() || text[0] != '/')
    return make_error(Errc::kMalformed, "multiaddr must start with '/'");
  if (text.size() > 1 && text.back() == '/') text.remove_suffix(1);  // tolerate one trailing '/'
  std::vector<MultiaddrComponent> comps;
  std::size_t pos = 1;
  auto next_token = [&](std::string_view& tok) {
    if (pos > text.size()) return false;
    const std::size_t end = std::min(text.find('/', pos), text.size());
    tok = text.substr(pos, end - pos);
    pos = end + 1;
    return true;
  };
  std::string_view name;
  while (next_token(name)) {
    if (name.empty()) return make_error(Errc::kMalformed, "multiaddr: empty protocol name");
    const ProtocolInfo* p = by_name(name);
    if (p == nullptr)
      return make_error(Errc::kUnsupported,
                        "multiaddr: unknown protocol '" + std::string(name) + "'");
    std::string_view value;
    if (p->kind != ValueKind::kNone && !next_token(value))
      return make_error(Errc::kMalformed, "multiaddr: missing value for " + std::string(p->name));
    auto bin = value_from_text(*p, value);
    if (!bin) return std::move(bin).error();
    if (comps.size() >= kMaxMultiaddrComponents)
      return make_error(Errc::kTooLarge, "multiaddr: too many components");
    comps.push_back({p->code, std::move(*bin)});
  }
  if (comps.empty()) return make_error(Errc::kMalformed, "multiaddr: no components");
  Multiaddr ma(std::move(comps));
  if (ma.to_bytes().size() > kMaxMultiaddrBytes)
    return make_error(Errc::kTooLarge, "multiaddr longer than 1024 bytes");
  return ma;
}

Result<Multiaddr> Multiaddr::from_bytes(ByteView bytes) {
  if (bytes.size() > kMaxMultiaddrBytes)
    return make_error(Errc::kTooLarge, "multiaddr longer than 1024 bytes");
  if (bytes.empty()) return make_error(Errc::kMalformed, "multiaddr: empty");
  std::vector<MultiaddrComponent> comps;
  while (!bytes.empty()) {
    auto code = decode_uvarint(bytes);
    if (!code) return make_error(code.error().code, "multiaddr code: " + code.error().message);
    bytes = bytes.subspan(code->size);
    const ProtocolInfo* p = by_code(code->value);
    if (p == nullptr)
      return make_error(Errc::kUnsupported,
                        "multiaddr: unknown protocol code " + std::to_string(code->value));
    std::size_t len = 0;
    switch (p->kind) {
      case ValueKind::kNone:
        len = 0;
        break;
      case ValueKind::kIp4:
        len = 4;
        break;
      case ValueKind::kIp6:
        len = 16;
        break;
      case ValueKind::kPort:
        len = 2;
        break;
      case ValueKind::kDnsName:
      case ValueKind::kPeerId: {
        auto l = decode_uvarint(bytes);
        if (!l) return make_error(l.error().code, "multiaddr length: " + l.error().message);
        bytes = bytes.subspan(l->size);
        if (l->value > bytes.size())
          return make_error(Errc::kTruncated,
                            "multiaddr: " + std::string(p->name) + " value truncated");
        len = static_cast<std::size_t>(l->value);
        break;
      }
    }
    if (len > bytes.size())
      return make_error(Errc::kTruncated,
                        "multiaddr: " + std::string(p->name) + " value truncated");
    Bytes value(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
    bytes = bytes.subspan(len);
    if (p->kind == ValueKind::kDnsName) {
      if (auto st = check_dns_name(value); !st) return std::move(st).error();
    } else if (p->kind == ValueKind::kPeerId) {
      if (auto id = PeerId::from_bytes(value); !id)
        return make_error(id.error().code, "multiaddr: " + id.error().message);
    }
    if (comps.size() >= kMaxMultiaddrComponents)
      return make_error(Errc::kTooLarge, "multiaddr: too many components");
    comps.push_back({code->value, std::move(value)});
  }
  return Multiaddr(std::move(comps));
}

Result<Multiaddr> Multiaddr::from_ip_tcp(std::string_view ip, std::uint16_t port) {
  const bool v6 = ip.find(':') != std::string_view::npos;
  auto host = value_from_text(*by_code(v6 ? kIp6 : kIp4), ip);
  if (!host) return std::move(host).error();
  return Multiaddr({{v6 ? kIp6 : kIp4, std::move(*host)},
                    {kTcp, Bytes{static_cast<std::uint8_t>(port >> 8),
                                 static_cast<std::uint8_t>(port & 0xff)}}});
}

std::string Multiaddr::to_string() const {
  std::string out;
  for (const auto& c : components_) {
    const ProtocolInfo* p = by_code(c.code);
    out += '/';
    out += p->name;
    if (p->kind != ValueKind::kNone) {
      out += '/';
      out += value_to_text(*p, c.value);
    }
  }
  return out;
}

Bytes Multiaddr::to_bytes() const {
  Bytes out;
  for (const auto& c : components_) {
    encode_uvarint(c.code, out);
    const ValueKind kind = by_code(c.code)->kind;
    if (kind == ValueKind::kDnsName || kind == ValueKind::kPeerId)
      encode_uvarint(c.value.size(), out);
    append(out, c.value);
  }
  return out;
}

Result<HostPort> Multiaddr::tcp_endpoint() const {
  for (std::size_t i = 0; i + 1 < components_.size(); ++i) {
    const auto& h = components_[i];
    const auto& t = components_[i + 1];
    if (t.code != kTcp) continue;
    HostPort hp{value_to_text(*by_code(h.code), h.value),
                static_cast<std::uint16_t>(t.value[0] << 8 | t.value[1]), HostPort::Kind::kIp4};
    switch (h.code) {
      case kIp4:
        hp.kind = HostPort::Kind::kIp4;
        break;
      case kIp6:
        hp.kind = HostPort::Kind::kIp6;
        break;
      case kDns:
        hp.kind = HostPort::Kind::kDns;
        break;
      case kDns4:
        hp.kind = HostPort::Kind::kDns4;
        break;
      case kDns6:
        hp.kind = HostPort::Kind::kDns6;
        break;
      default:
        continue;
    }
    return hp;
  }
  return make_error(Errc::kUnsupported, "multiaddr has no (ip|dns)/tcp pair: " + to_string());
}

std::optional<PeerId> Multiaddr::peer_id() const {
  for (auto it = components_.rbegin(); it != components_.rend(); ++it) {
    if (it->code != kP2p) continue;
    auto id = PeerId::from_bytes(it->value);
    if (id) return std::move(id).value();
    return std::nullopt;
  }
  return std::nullopt;
}

Multiaddr Multiaddr::without_peer_id() const {
  auto c = components_;
  if (!c.empty() && c.back().code == kP2p) c.pop_back();
  return Multiaddr(std::move(c));
}

Multiaddr Multiaddr::with_peer_id(const PeerId& id) const {
  auto c = components_;
  c.push_back({kP2p, id.bytes()});
  return Multiaddr(std::move(c));
}

bool Multiaddr::has(std::uint64_t code) const {
  for (const auto& c : components_)
    if (c.code == code) return true;
  return false;
}

}  // namespace kwaai::p2p::libp2p
