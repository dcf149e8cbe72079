#!/usr/bin/env bash
# Sets up, builds, and runs the main job on the bundled default: lists the compute devices,
# then a short side-by-side benchmark of every device found.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
build/cli/kwaainet devices
build/cli/kwaainet bench --ops --quick
