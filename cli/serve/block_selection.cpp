#include "cli/serve/block_selection.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

namespace kwaai::serve {

namespace petals = kwaai::p2p::petals;

std::vector<double> block_throughputs(const std::vector<petals::BlockRecord>& records,
                                      petals::ServerState min_state) {
  struct Span {
    std::size_t start = 0, end = 0;
    petals::ServerState state = petals::ServerState::offline;
    double throughput = 0;
  };
  const std::size_t total = records.size();
  // Keyed by base58 peer id: std::map iterates in sorted order, like Python's sorted(...).
  std::map<std::string, Span> spans;
  for (std::size_t b = 0; b < total; ++b) {
    std::vector<const petals::BlockServer*> servers;
    for (const auto& s : records[b].servers) servers.push_back(&s);
    std::sort(servers.begin(), servers.end(),
              [](auto* x, auto* y) { return x->peer_id_base58 < y->peer_id_base58; });
    for (const auto* s : servers) {
      const auto st = s->info.state;
      if (static_cast<int>(st) < static_cast<int>(min_state)) continue;
      auto it = spans.find(s->peer_id_base58);
      if (it == spans.end() || static_cast<int>(it->second.state) < static_cast<int>(st)) {
        Span sp{b, b + 1, st, s->info.throughput};
        if (s->info.start_block && s->info.end_block) {
          sp.start = static_cast<std::size_t>(*s->info.start_block);
          sp.end = std::min<std::size_t>(static_cast<std::size_t>(*s->info.end_block), total);
        }
        spans[s->peer_id_base58] = sp;
      } else if (it->second.state == st) {
        it->second.end = std::max(it->second.end, b + 1);
      }
    }
  }
  std::vector<double> out(total, 0.0);
  for (const auto& [peer, sp] : spans)
    for (std::size_t b = sp.start; b < sp.end && b < total; ++b) out[b] += sp.throughput;
  return out;
}

std::uint32_t choose_best_start(std::span<const double> throughputs, std::uint32_t num_blocks) {
  if (num_blocks == 0 || num_blocks > throughputs.size())
    throw std::invalid_argument("choose_best_start: num_blocks " + std::to_string(num_blocks) +
                                " outside 1.." + std::to_string(throughputs.size()));
  std::vector<double> best;
  std::uint32_t best_start = 0;
  for (std::size_t i = 0; i + num_blocks <= throughputs.size(); ++i) {
    std::vector<double> w(throughputs.begin() + static_cast<std::ptrdiff_t>(i),
                          throughputs.begin() + static_cast<std::ptrdiff_t>(i + num_blocks));
    std::sort(w.begin(), w.end());
    if (i == 0 || w < best) {
      best = std::move(w);
      best_start = static_cast<std::uint32_t>(i);
    }
  }
  return best_start;
}

}  // namespace kwaai::serve
