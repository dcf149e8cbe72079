#!/usr/bin/env bash
# Sets up, builds, and runs the main job on the bundled default: lists the compute devices,
# starts a Petals swarm on loopback (a DHT bootstrap node and two `kwaainet serve` processes
# splitting the bundled stories260K, ../shared/models) and generates text through it with
# `kwaainet client generate` (swarm.sh), then generates the same tokens in one process and
# benchmarks every device side by side (op throughput, then tokens/s of the bundled model).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
kw=build/cli/kwaainet
model=../shared/models/stories260K

$kw devices
# Every Vulkan device kwaainet can use (lavapipe included), plus the CPU backend.
devices=cpu
# (The device objects' own keys sit at six spaces in the pretty-printed "vulkan" array.)
for i in $($kw devices --json | sed -n '/^  "vulkan": \[/,$p' | sed -nE 's/^ {6}"index": ([0-9]+).*/\1/p'); do
  devices="$devices,vulkan:$i"
done
echo "== swarm: bootstrap node + two servers on loopback, client generate through them"
KWAAINET=$kw ./swarm.sh
echo
echo "== generate: the same 48 greedy tokens from BOS (id 1) in one process, default device"
$kw generate --model "$model" --prompt-ids 1 --max-new-tokens 48 --temperature 0
echo
echo "== bench: op throughput on $devices"
$kw bench --ops --quick --devices "$devices"
echo "== bench: tokens/s of stories260K on $devices"
$kw bench --model "$model" --quant none --prompt-len 64 --gen-len 32 --devices "$devices"
