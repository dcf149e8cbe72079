#!/usr/bin/env bash
# A 70B-class span (Llama-3-70B shape, 10 blocks, sharded bf16 safetensors of random weights,
# written once by build/bench/kwaai_span_load) loaded the way `serve` loads it, with
# quantization at load time: load time against the time to read the same bytes from disk
# (`cat` after dropping the page cache), peak RSS against the quantized span plus the KV cache
# of one 2048-token sequence. Drops the page cache before each run (needs root; without it the
# figures are warm-cache ones and the script says so).
#   bench/span_load.sh [--dir DIR] [--quants q4_0,q4_k] [--blocks 10] [--shape llama-3-70b]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${KWAAI_SCRATCH:-$HOME/.cache/kwaainet}/span-llama-3-70b-10
quants=q4_0,q4_k blocks=10 shape=llama-3-70b
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --quants) quants=$2; shift 2 ;;
    --blocks) blocks=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "span_load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
tool=build/bench/kwaai_span_load
[ -x "$tool" ] || { echo "span_load.sh: build first (./setup.sh)" >&2; exit 2; }
if [ ! -f "$dir/model.safetensors.index.json" ]; then
  echo "[span] writing $dir" >&2
  "$tool" --write "$dir" --shape "$shape" --blocks "$blocks" --blocks-per-shard 2 >&2
fi
cold=yes
drop() {
  sync
  if [ "$(id -u)" = 0 ]; then echo 3 > /proc/sys/vm/drop_caches; else cold=no; fi
}
drop
t0=$(date +%s.%N)
cat "$dir"/*.safetensors > /dev/null
t1=$(date +%s.%N)
bytes=$(cat "$dir"/*.safetensors | wc -c)
read_s=$(python3 -c "print($t1 - $t0)")
cpu_model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
echo "CPU: $cpu_model, $(nproc) threads; cold page cache: $cold"
printf 'read %s bytes in %.2f s (%.2f GB/s)\n' "$bytes" "$read_s" \
  "$(python3 -c "print($bytes / $read_s / 1e9)")"
printf '%6s %9s %9s %12s %12s %12s %9s\n' quant load_s x_read weights_MB kv_MB peak_rss_MB x_span
IFS=, read -r -a qs <<<"$quants"
for q in "${qs[@]}"; do
  drop
  line=$("$tool" --load "$dir" --blocks "$blocks" --quant "$q")
  python3 - "$line" "$read_s" <<'PY'
import json, sys
j = json.loads(sys.argv[1]); read_s = float(sys.argv[2])
span = j["weight_bytes"] + j["kv_cache_bytes"]
print(f'{j["quant"]:>6} {j["load_seconds"]:9.2f} {j["load_seconds"] / read_s:9.2f} '
      f'{j["weight_bytes"] / 1e6:12.1f} {j["kv_cache_bytes"] / 1e6:12.1f} '
      f'{j["peak_rss_bytes"] / 1e6:12.1f} {j["peak_rss_bytes"] / span:9.3f}')
PY
done
