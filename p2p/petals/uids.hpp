// Module uids as Petals names them: "{dht_prefix}.{block}" per block, a span in one RPC as the
// block uids joined by CHAIN_DELIMITER (" "), and the dht_prefix each model family derives from
// its hub repository name (Distributed*Config.from_pretrained).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/petals/common.hpp"

namespace kwaai::p2p::petals {

struct BlockUid {
  std::string dht_prefix;
  std::uint32_t block = 0;
  std::string to_string() const;  // "prefix.block"
  bool operator==(const BlockUid&) const = default;
};

// A prefix must be non-empty and free of "." and " " (Petals asserts this in Server.__init__,
// because parse_uid splits on the first and chains on the second).
Status validate_dht_prefix(std::string_view prefix);

std::string block_uid(std::string_view dht_prefix, std::uint32_t block);
// parse_uid: exactly one ".", a valid prefix before it, a decimal block index after it (plain
// ASCII digits only; Python's int() would also take "+5" or " 5", which no Petals peer sends).
Result<BlockUid> parse_block_uid(std::string_view uid);

// "p.start p.start+1 … p.end-1"; empty for start >= end.
std::string chain_uid(std::string_view dht_prefix, std::uint32_t start, std::uint32_t end);
// Splits on " " and parses each uid. At most `max_blocks` uids (a hostile chain is bounded).
Result<std::vector<BlockUid>> parse_chain_uid(std::string_view chain,
                                              std::size_t max_blocks = 4096);

enum class ModelFamily { llama, falcon, mixtral, bloom };

// dht_prefix derivation from a hub repo id ("org/name"):
//   llama:   basename, "." -> "-", "-hf" appended unless already there
//   falcon:  basename, "." -> "-"
//   mixtral: full repo id, "." -> "-"
//   bloom:   full repo id + "-petals", "." -> "-"
// The result is validated (a repo id containing a space is refused).
Result<std::string> derive_dht_prefix(ModelFamily family, std::string_view repo_id);

}  // namespace kwaai::p2p::petals
