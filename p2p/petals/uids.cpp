#include "p2p/petals/uids.hpp"

#include <algorithm>
#include <charconv>

namespace kwaai::p2p::petals {

std::string BlockUid::to_string() const {
  return block_uid(dht_prefix, block);
}

Status validate_dht_prefix(std::string_view prefix) {
  if (prefix.empty()) return make_error(Errc::malformed, "dht_prefix is empty");
  if (prefix.find(kUidDelimiter) != std::string_view::npos ||
      prefix.find(kChainDelimiter) != std::string_view::npos)
    return make_error(Errc::malformed,
                      "dht_prefix must not contain '.' or ' ': '" + std::string(prefix) + "'");
  return Ok{};
}

std::string block_uid(std::string_view dht_prefix, std::uint32_t block) {
  return std::string(dht_prefix) + kUidDelimiter + std::to_string(block);
}

Result<BlockUid> parse_block_uid(std::string_view uid) {
  const auto dot = uid.find(kUidDelimiter);
  if (dot == std::string_view::npos || uid.find(kUidDelimiter, dot + 1) != std::string_view::npos)
    return make_error(Errc::malformed,
                      "block uid must have exactly one '.': '" + std::string(uid) + "'");
  const auto prefix = uid.substr(0, dot);
  if (auto s = validate_dht_prefix(prefix); !s) return s.error();
  const auto idx = uid.substr(dot + 1);
  std::uint32_t block = 0;
  const bool digits = !idx.empty() && std::all_of(idx.begin(), idx.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
  auto r = std::from_chars(idx.data(), idx.data() + idx.size(), block);
  if (!digits || r.ec != std::errc{} || r.ptr != idx.data() + idx.size())
    return make_error(Errc::malformed, "bad block index in uid '" + std::string(uid) + "'");
  return BlockUid{std::string(prefix), block};
}

std::string chain_uid(std::string_view dht_prefix, std::uint32_t start, std::uint32_t end) {
  std::string out;
  for (std::uint32_t i = start; i < end; ++i) {
    if (i != start) out += kChainDelimiter;
    out += block_uid(dht_prefix, i);
  }
  return out;
}

Result<std::vector<BlockUid>> parse_chain_uid(std::string_view chain, std::size_t max_blocks) {
  std::vector<BlockUid> out;
  std::size_t pos = 0;
  while (true) {
    const auto sp = chain.find(kChainDelimiter, pos);
    const auto part = chain.substr(pos, sp == std::string_view::npos ? chain.npos : sp - pos);
    if (out.size() >= max_blocks)
      return make_error(Errc::too_large,
                        "chain uid has more than " + std::to_string(max_blocks) + " blocks");
    auto uid = parse_block_uid(part);
    if (!uid) return uid.error();
    out.push_back(std::move(*uid));
    if (sp == std::string_view::npos) break;
    pos = sp + 1;
  }
  return out;
}

Result<std::string> derive_dht_prefix(ModelFamily family, std::string_view repo_id) {
  std::string name(repo_id);
  if (family == ModelFamily::llama || family == ModelFamily::falcon) {
    const auto slash = name.rfind('/');
    if (slash != std::string::npos) name = name.substr(slash + 1);
  }
  if (family == ModelFamily::bloom) name += "-petals";
  std::replace(name.begin(), name.end(), '.', '-');
  if (family == ModelFamily::llama &&
      !(name.size() >= 3 && name.compare(name.size() - 3, 3, "-hf") == 0))
    name += "-hf";
  if (auto s = validate_dht_prefix(name); !s) return s.error();
  return name;
}

}  // namespace kwaai::p2p::petals
