#!/usr/bin/env bash
# Sets up, builds, and runs the whole test suite: unit, kernel (CPU backend and Vulkan on
# whatever device exists -- lavapipe on a machine without a GPU), engine, p2p, interop
# against js-libp2p, fuzz-corpus replays and short libFuzzer runs.
set -euo pipefail
cd "$(dirname "$0")"
# ccache keys on relative paths below the checkout, so a fresh clone reuses earlier builds.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
jobs=$(nproc)
# The main build registers a short run of each libFuzzer target in build-fuzz/ as a ctest case,
# so build-fuzz (clang, ASan/UBSan) is built before ctest starts.
./setup.sh -DKWAAI_FUZZ_DIR="$PWD/build-fuzz"
cmake -S . -B build-fuzz -G Ninja -DKWAAI_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
cmake --build build-fuzz -j"$jobs"
ctest --test-dir build --output-on-failure --timeout 900 -j"$jobs"
