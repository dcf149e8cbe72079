#!/usr/bin/env bash
# Installs the Debian 12 dependencies (when missing) and builds kwaainet in Release with
# ccache into build/. Every other script starts here.
set -euo pipefail
cd "$(dirname "$0")"
# ccache keys on relative paths below the checkout, so a fresh clone reuses earlier builds.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if [ "$(id -u)" = 0 ]; then
  .ci/setup-deps.sh
elif command -v sudo >/dev/null; then
  sudo .ci/setup-deps.sh
else
  .ci/setup-deps.sh  # fails with apt's own message if something is missing
fi
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$jobs"
