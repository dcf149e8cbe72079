// Invariant check for the libp2p fuzz targets: a violated round-trip property is a crash
// that libFuzzer (and the seed replay in ctest) reports.
#pragma once

#include <cstdio>
#include <cstdlib>

#define LIBP2P_FUZZ_CHECK(cond)                                                              \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
