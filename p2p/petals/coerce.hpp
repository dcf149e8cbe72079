// pydantic v1's lax coercions that Petals' dataclasses apply to values read from the DHT: a
// remote peer may send an int where a str is declared, or "yes" where a bool is, and Python
// readers accept those, so a compatible reader must turn them into the same values.
#pragma once

#include <optional>
#include <string>

#include "p2p/petals/common.hpp"

namespace kwaai::p2p::petals {

// Python's repr(float): shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16,
// otherwise scientific ("1e+16", "1.5e-05"); "inf", "-inf", "nan".
std::string python_float_repr(double x);

// pydantic.v1 str_validator: str as is; int/float/bool via str(); bytes decoded as UTF-8.
// nullopt for anything else (and for bytes that are not UTF-8).
std::optional<std::string> coerce_str(const Value& v);

// pydantic.v1 bool_validator: bool; 0/1 (also 0.0/1.0); the strings (case-insensitive) and
// bytes "0 off f false n no" / "1 on t true y yes". nullopt otherwise.
std::optional<bool> coerce_bool(const Value& v);

}  // namespace kwaai::p2p::petals
