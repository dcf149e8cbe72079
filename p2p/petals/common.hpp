// Shared vocabulary of the Petals layer: the hivemind core's typed results and value model, and
// the constants Petals' data_structures.py defines.
#pragma once

#include "p2p/hivemind/msgpack_value.hpp"
#include "p2p/hivemind/result.hpp"

namespace kwaai::p2p::petals {

using hivemind::Bytes;
using hivemind::ByteView;
using hivemind::Errc;
using hivemind::Error;
using hivemind::make_error;
using hivemind::Ok;
using hivemind::Result;
using hivemind::Status;
using hivemind::Value;

inline constexpr char kUidDelimiter = '.';    // "{dht_prefix}.{block_index}"
inline constexpr char kChainDelimiter = ' ';  // "p.1 p.2 p.3" = a span in one RPC
inline constexpr const char* kModelsRegistryKey = "_petals.models";
// hivemind.utils.timed_storage.MAX_DHT_TIME_DISCREPANCY_SECONDS: the floor of a record lifetime.
inline constexpr double kMaxDhtTimeDiscrepancySeconds = 3.0;

}  // namespace kwaai::p2p::petals
