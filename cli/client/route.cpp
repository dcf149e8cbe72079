#include "cli/client/route.hpp"

#include <algorithm>
#include <limits>
#include <map>

namespace kwaai::client {

std::vector<RemoteSpan> compute_spans(const std::vector<petals::BlockRecord>& records,
                                      std::uint32_t first_block, petals::ServerState min_state) {
  const auto n = static_cast<std::uint32_t>(records.size());
  // Keyed by peer id: like Petals, one span per peer, the last (highest-state) record winning.
  std::map<std::string, RemoteSpan> spans;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::vector<const petals::BlockServer*> servers;
    for (const auto& s : records[i].servers) servers.push_back(&s);
    std::stable_sort(servers.begin(), servers.end(),
                     [](auto* a, auto* b) { return a->peer_id_base58 < b->peer_id_base58; });
    for (const auto* s : servers) {
      const auto& info = s->info;
      if (info.state < min_state) continue;
      auto it = spans.find(s->peer_id_base58);
      if (it == spans.end() || it->second.info.state < info.state) {
        RemoteSpan span{s->peer_id_base58, i, i + 1, info};
        if (info.start_block && info.end_block) {
          // The announced span, relative to the requested range and clipped to it.
          const std::int64_t st = static_cast<std::int64_t>(*info.start_block) - first_block;
          const std::int64_t en = static_cast<std::int64_t>(*info.end_block) - first_block;
          span.start = static_cast<std::uint32_t>(std::max<std::int64_t>(st, 0));
          span.end = static_cast<std::uint32_t>(std::clamp<std::int64_t>(en, 0, n));
        }
        spans.insert_or_assign(s->peer_id_base58, std::move(span));
      } else if (it->second.info.state == info.state) {
        it->second.end = std::max(it->second.end, i + 1);
      }
    }
  }
  std::vector<RemoteSpan> out;
  for (auto& [peer, span] : spans) {
    if (span.start >= span.end) continue;  // a record whose announced span misses the range
    span.start += first_block;
    span.end += first_block;
    out.push_back(std::move(span));
  }
  return out;
}

namespace {

constexpr double kDefaultRtt = 0.15;  // Petals: unknown RTT
constexpr double kMaxRtt = 5.0;
constexpr double kHopOverhead = 0.018;
constexpr double kUnknownBlockCost = 300.0;
constexpr double kNoCachePenalty = 10.0;

double block_cost(const RemoteSpan& s) {
  const auto rps = s.info.inference_rps;
  return rps && *rps > 0 ? 1.0 / *rps : kUnknownBlockCost;
}

double hop_cost(const RemoteSpan* from, const RemoteSpan& to, const RouteOptions& opt) {
  double rtt = kDefaultRtt;
  if (from && from->info.next_pings)
    for (const auto& [peer, ping] : *from->info.next_pings)
      if (peer == to.peer) rtt = ping;
  rtt = std::min(rtt, kMaxRtt);
  double cost = rtt / 2 + kHopOverhead;
  if (opt.cache_tokens_needed && to.info.cache_tokens_left &&
      *opt.cache_tokens_needed * 2 * to.length() > *to.info.cache_tokens_left)
    cost += kNoCachePenalty;
  return cost;
}

// Spans of banned peers survive only over blocks nobody else holds.
std::vector<RemoteSpan> drop_banned(const std::vector<RemoteSpan>& spans, std::uint32_t start,
                                    std::uint32_t end, const std::set<std::string>& banned) {
  std::vector<int> others(end - start, 0);
  for (const auto& s : spans)
    if (!banned.count(s.peer))
      for (std::uint32_t b = std::max(s.start, start); b < std::min(s.end, end); ++b)
        ++others[b - start];
  std::vector<RemoteSpan> out;
  for (const auto& s : spans) {
    if (!banned.count(s.peer)) {
      out.push_back(s);
      continue;
    }
    std::uint32_t b = std::max(s.start, start);
    const std::uint32_t e = std::min(s.end, end);
    while (b < e) {
      while (b < e && others[b - start] > 0) ++b;
      std::uint32_t run = b;
      while (run < e && others[run - start] == 0) ++run;
      if (b < run) {
        RemoteSpan part = s;
        part.start = b;
        part.end = run;
        out.push_back(std::move(part));
      }
      b = run;
    }
  }
  return out;
}

}  // namespace

petals::Result<std::vector<RemoteSpan>> make_route(const std::vector<RemoteSpan>& all,
                                                   std::uint32_t start, std::uint32_t end,
                                                   const RouteOptions& opt) {
  if (start >= end)
    return petals::make_error(
        petals::Errc::rejected,
        "empty block range [" + std::to_string(start) + ", " + std::to_string(end) + ")");
  std::vector<RemoteSpan> spans;
  for (auto& s : drop_banned(all, start, end, opt.banned))
    if (s.start < end && s.end > start) spans.push_back(std::move(s));
  // Each use of a span enters at some block b and runs to its end (or to `end`): Petals only
  // lets a route leave a server where its span ends. Exits strictly grow along a route, so
  // spans sorted by exit can be relaxed in one pass (a DAG shortest path).
  auto exit_of = [&](const RemoteSpan& s) { return std::min(s.end, end); };
  std::vector<std::size_t> order(spans.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (exit_of(spans[a]) != exit_of(spans[b])) return exit_of(spans[a]) < exit_of(spans[b]);
    return spans[a].peer < spans[b].peer;
  });
  constexpr double kInf = std::numeric_limits<double>::infinity();
  struct Best {
    double cost = kInf;
    int hops = 0;
    std::uint32_t entry = 0;
    std::optional<std::size_t> prev;
  };
  std::vector<Best> best(spans.size());
  auto better = [](double c, int h, const Best& b) {
    constexpr double kEps = 1e-9;
    return c < b.cost - kEps || (c <= b.cost + kEps && h < b.hops);
  };
  for (std::size_t i : order) {
    const RemoteSpan& s = spans[i];
    const std::uint32_t e = exit_of(s);
    const std::uint32_t lo = std::max(s.start, start);
    if (lo == start) {
      const double c = hop_cost(nullptr, s, opt) + (e - start) * block_cost(s);
      if (better(c, 1, best[i])) best[i] = {c, 1, start, std::nullopt};
    }
    for (std::size_t j : order) {
      const RemoteSpan& p = spans[j];
      const std::uint32_t b = exit_of(p);
      if (b >= e) break;  // sorted by exit: nothing further can precede s
      if (j == i || b < lo || best[j].cost == kInf) continue;
      const double c = best[j].cost + hop_cost(&p, s, opt) + (e - b) * block_cost(s);
      if (better(c, best[j].hops + 1, best[i])) best[i] = {c, best[j].hops + 1, b, j};
    }
  }
  std::optional<std::size_t> last;
  for (std::size_t i : order)
    if (exit_of(spans[i]) == end && best[i].cost < kInf &&
        (!last || better(best[i].cost, best[i].hops, best[*last])))
      last = i;
  if (!last) {
    // Name the first block no usable server reaches, which is what an operator must fix.
    std::uint32_t reach = start;
    bool grew = true;
    while (grew && reach < end) {
      grew = false;
      for (const auto& s : spans)
        if (s.start <= reach && s.end > reach) {
          reach = std::min(s.end, end);
          grew = true;
        }
    }
    return petals::make_error(petals::Errc::rejected,
                              "no chain of ONLINE servers covers blocks [" + std::to_string(start) +
                                  ", " + std::to_string(end) + "): no server holds block " +
                                  std::to_string(reach) + " (" + std::to_string(all.size()) +
                                  " server span(s) known)");
  }
  std::vector<RemoteSpan> route;
  for (std::optional<std::size_t> i = last; i; i = best[*i].prev) {
    RemoteSpan hop = spans[*i];
    hop.start = best[*i].entry;
    hop.end = exit_of(spans[*i]);
    route.push_back(std::move(hop));
  }
  std::reverse(route.begin(), route.end());
  return route;
}

std::string describe_route(const std::vector<RemoteSpan>& route) {
  std::string out;
  for (const auto& s : route) {
    if (!out.empty()) out += " -> ";
    out += s.peer + "[" + std::to_string(s.start) + ":" + std::to_string(s.end) + ")";
  }
  return out;
}

}  // namespace kwaai::client
