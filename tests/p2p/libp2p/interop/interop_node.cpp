// libp2p_interop_node: a kwaainet host driven line by line over stdin, for the js-libp2p
// interop scripts. It listens on 127.0.0.1, prints {"peerId","addrs"} first, then answers
// each command with one JSON line:
//   dial <maddr> | ping <peer> | echo <peer> <bytes> | identify <peer> |
//   bootstrap <maddr> | findpeer <peer> | conns | quit
// It serves /interop/echo/1.0.0, identify(+push), ping and kad. EOF on stdin = quit.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>

#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "p2p/libp2p/host/host.hpp"
#include "p2p/libp2p/protocols/identify.hpp"
#include "p2p/libp2p/protocols/kad.hpp"
#include "p2p/libp2p/protocols/ping.hpp"

using namespace kwaai::p2p::libp2p;
using json = nlohmann::json;

namespace {

constexpr const char* kEcho = "/interop/echo/1.0.0";

asio::awaitable<void> echo(YamuxStreamPtr s, ConnectionPtr) {
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    auto n = co_await s->read_some(buf);
    if (!n || *n == 0) break;
    if (!(co_await s->write(ByteView(buf.data(), *n)))) co_return;
  }
  (void)s->close_write();
}

struct Node {
  std::shared_ptr<Host> host;
  std::shared_ptr<IdentifyService> identify;
  std::shared_ptr<PingService> ping;
  std::shared_ptr<KadService> kad;
};

void emit(const json& j) {
  std::cout << j.dump() << std::endl;
}

json fail(const std::string& e) {
  return json{{"ok", false}, {"error", e}};
}

asio::awaitable<json> echo_cmd(Node& n, const PeerId& peer, std::size_t size) {
  std::vector<std::string> protos{kEcho};
  auto ns = co_await n.host->new_stream(peer, protos);
  if (!ns) co_return fail(ns.error().to_string());
  auto s = ns->stream;
  Bytes payload(size);
  for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<std::uint8_t>(i & 0xff);
  asio::co_spawn(
      n.host->executor(),
      [s, payload]() -> asio::awaitable<void> {
        if (co_await s->write(payload)) (void)s->close_write();
      },
      asio::detached);
  std::size_t got = 0, bad = 0;
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    auto r = co_await s->read_some(buf);
    if (!r) co_return fail(r.error().to_string());
    if (*r == 0) break;
    for (std::size_t i = 0; i < *r; ++i)
      if (buf[i] != static_cast<std::uint8_t>((got + i) & 0xff)) ++bad;
    got += *r;
  }
  co_return json{{"ok", got == size && bad == 0}, {"bytes", got}, {"mismatches", bad}};
}

asio::awaitable<json> identify_cmd(Node& n, const PeerId& peer) {
  auto c = co_await n.host->connect(peer);
  if (!c) co_return fail(c.error().to_string());
  auto r = co_await n.identify->identify(*c);
  if (!r) co_return fail(r.error().to_string());
  json addrs = json::array();
  for (const auto& a : r->addrs) addrs.push_back(a.to_string());
  co_return json{{"ok", true},
                 {"agent", r->agent_version},
                 {"protocolVersion", r->protocol_version},
                 {"protocols", r->protocols},
                 {"addrs", addrs},
                 {"publicKey", r->public_key ? to_hex(r->public_key->to_protobuf()) : ""},
                 {"keyMatchesPeer", r->public_key && peer.matches(*r->public_key)},
                 {"observed", r->observed_addr ? r->observed_addr->to_string() : ""}};
}

asio::awaitable<json> run_command(Node& n, const std::string& line) {
  std::istringstream in(line);
  std::string cmd, arg;
  in >> cmd >> arg;
  auto peer_arg = [&]() { return PeerId::from_string(arg); };
  if (cmd == "dial" || cmd == "bootstrap") {
    auto ma = Multiaddr::from_string(arg);
    if (!ma) co_return fail(ma.error().to_string());
    if (cmd == "bootstrap") {
      std::vector<Multiaddr> boot{*ma};
      const std::size_t size = co_await n.kad->bootstrap(boot);
      co_return json{{"ok", size > 0}, {"table", size}};
    }
    auto c = co_await n.host->connect(*ma);
    if (!c) co_return fail(c.error().to_string());
    co_return json{
        {"ok", true}, {"peer", (*c)->peer.to_string()}, {"early_muxer", (*c)->early_muxer}};
  }
  if (cmd == "conns") {
    json peers = json::array();
    for (const auto& c : n.host->connections()) peers.push_back(c->peer.to_string());
    co_return json{{"ok", true}, {"peers", peers}};
  }
  auto peer = peer_arg();
  if (!peer) co_return fail("bad peer id: " + peer.error().to_string());
  if (cmd == "ping") {
    auto r = co_await n.ping->ping(*peer, std::chrono::milliseconds(10000));
    if (!r) co_return fail(r.error().to_string());
    co_return json{{"ok", true}, {"rtt_ms", std::chrono::duration<double, std::milli>(*r).count()}};
  }
  if (cmd == "echo") {
    std::size_t size = 0;
    in >> size;
    co_return co_await echo_cmd(n, *peer, size);
  }
  if (cmd == "identify") co_return co_await identify_cmd(n, *peer);
  if (cmd == "findpeer") {
    auto r = co_await n.kad->find_peer(*peer);
    if (!r) co_return fail(r.error().to_string());
    json addrs = json::array();
    for (const auto& a : r->addrs) addrs.push_back(a.to_string());
    co_return json{{"ok", true}, {"addrs", addrs}};
  }
  co_return fail("unknown command " + cmd);
}

asio::awaitable<void> command_loop(Node& n, asio::io_context& ctx) {
  asio::posix::stream_descriptor input(ctx, ::dup(0));
  asio::streambuf buf;
  for (;;) {
    boost::system::error_code ec;
    std::size_t len = co_await asio::async_read_until(
        input, buf, '\n', asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    std::string line(asio::buffers_begin(buf.data()),
                     asio::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(len));
    buf.consume(len);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.empty()) continue;
    if (line == "quit") break;
    // Commands run concurrently so a slow one does not block, e.g., the peer's pings.
    asio::co_spawn(
        ctx,
        [&n, line]() -> asio::awaitable<void> {
          json j = co_await run_command(n, line);
          j["cmd"] = line.substr(0, line.find(' '));
          emit(j);
        },
        asio::detached);
  }
  co_await n.host->close();
  ctx.stop();
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("interop"));
  spdlog::set_level(spdlog::level::info);
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--debug") spdlog::set_level(spdlog::level::debug);
  asio::io_context ctx;
  HostConfig cfg;
  Node n;
  n.host = Host::create(ctx.get_executor(), PrivateKey::generate_ed25519(), cfg);
  auto la = Multiaddr::from_string("/ip4/127.0.0.1/tcp/0");
  if (auto st = n.host->listen(*la); !st) {
    spdlog::error("{}", st.error().to_string());
    return 1;
  }
  n.host->set_handler(kEcho, echo);
  n.identify = IdentifyService::attach(n.host);
  n.ping = PingService::attach(n.host);
  n.kad = KadService::attach(n.host, n.identify);
  json addrs = json::array();
  for (const auto& a : n.host->listen_addrs())
    addrs.push_back(a.with_peer_id(n.host->id()).to_string());
  emit(json{{"peerId", n.host->id().to_string()}, {"addrs", addrs}});
  asio::co_spawn(ctx, command_loop(n, ctx), asio::detached);
  ctx.run();
  return 0;
}
