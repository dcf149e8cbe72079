#!/usr/bin/env bash
# A Petals swarm on loopback in a few seconds: a DHT bootstrap node (`kwaainet dht run`), two
# `kwaainet serve` processes splitting the bundled stories260K (blocks 0:3 and 3:5), then
# `kwaainet client generate` through them, printing which server served which blocks.
# Every process started here is stopped on exit, error or Ctrl-C included.
#   KWAAINET=path/to/kwaainet ./swarm.sh   (default: build/cli/kwaainet)
#   SWARM_TOKENS=N (default 48), SWARM_CLIENT_FLAGS="--json ..." (extra client flags)
set -euo pipefail
cd "$(dirname "$0")"
kw=${KWAAINET:-build/cli/kwaainet}
model=../shared/models/stories260K
prefix=stories260K-hf
[ -x "$kw" ] || { echo "swarm.sh: $kw not found (build first, or set KWAAINET)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  # SIGTERM lets servers announce OFFLINE; anything still there after 5 s is killed.
  for _ in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc != 0 ]; then
    for f in "$tmp"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until file $1 contains a line matching $2 (at most $3 seconds) and prints that line.
wait_for() {
  for _ in $(seq $(($3 * 10))); do
    if line=$(grep -m1 -E "$2" "$1" 2>/dev/null); then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "swarm.sh: timed out waiting for '$2' in $1" >&2
  return 1
}

echo "== bootstrap node"
"$kw" dht run --host-maddr /ip4/127.0.0.1/tcp/0 >"$tmp/boot.out" 2>"$tmp/boot.log" &
pids+=($!)
boot=$(wait_for "$tmp/boot.out" '^/ip4/.*/p2p/' 10)
echo "   $boot"

# float32 on the wire so the swarm's greedy ids equal the single-process ones (Petals' own
# default for a float32 checkpoint is bfloat16).
serve_args=(--model "$model" --dht-prefix "$prefix" --initial-peers "$boot"
  --host-maddr /ip4/127.0.0.1/tcp/0 --device cpu --torch-dtype float32)
echo "== servers"
"$kw" serve "${serve_args[@]}" --blocks 0:3 >"$tmp/serve-a.out" 2>"$tmp/serve-a.log" &
pids+=($!)
"$kw" serve "${serve_args[@]}" --blocks 3:5 >"$tmp/serve-b.out" 2>"$tmp/serve-b.log" &
pids+=($!)
for s in a b; do
  line=$(wait_for "$tmp/serve-$s.log" 'ONLINE' 30)
  echo "   ${line#*] }"
done

tokens=${SWARM_TOKENS:-48}
echo "== client: $tokens greedy tokens from BOS through the swarm"
# shellcheck disable=SC2086  # the extra flags are meant to split
"$kw" client generate --initial-peers "$boot" --dht-prefix "$prefix" --model "$model" \
  --prompt-ids 1 --max-new-tokens "$tokens" --device cpu ${SWARM_CLIENT_FLAGS:-}
