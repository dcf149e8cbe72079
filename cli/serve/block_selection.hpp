// Which blocks a server with --num-blocks N takes (Petals' server/block_selection.py and
// client/routing/spans.py compute_spans): every server seen in the block records (JOINING or
// ONLINE) contributes its throughput to each block of its span; the chosen window of N
// consecutive blocks is the one whose sorted throughputs are lexicographically smallest (the
// least served blocks first), ties to the lowest start. Pure functions, tested as such.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "p2p/petals/dht_records.hpp"

namespace kwaai::serve {

// records[i] = what read_block_record gave for block i (blocks 0..total-1, in order).
// Throughput per block, spans summed in peer id order as Petals does.
std::vector<double> block_throughputs(
    const std::vector<kwaai::p2p::petals::BlockRecord>& records,
    kwaai::p2p::petals::ServerState min_state = kwaai::p2p::petals::ServerState::joining);

// _choose_best_start. Throws std::invalid_argument when num_blocks is 0 or exceeds the count.
std::uint32_t choose_best_start(std::span<const double> throughputs, std::uint32_t num_blocks);

}  // namespace kwaai::serve
