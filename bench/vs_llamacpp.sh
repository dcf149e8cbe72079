#!/usr/bin/env bash
# kwaainet and llama.cpp side by side on the same GGUF file, the same threads, in one sitting:
# prefill and decode tokens/s of the whole model (embedding, blocks, LM head), runs alternated
# over several rounds, medians and ratios printed with the CPU model and the memory bandwidth
# measured in the same run.
#
#   bench/vs_llamacpp.sh [--type q4_0|q8_0|f16|q4_k|q5_k|q6_k|q4_k_m] [--shape llama-3-8b] [--layers 4]
#                        [--prompts 128,512] [--gen 32] [--rounds 3] [--threads N]
#                        [--device cpu|vulkan] [--json FILE]
#
# llama.cpp is the prebuilt one in the npm package node-llama-cpp (pinned below), installed
# into a scratch folder (KWAAI_SCRATCH, default ~/.cache/kwaainet/vs_llamacpp) on first use;
# the GGUF (a model of random weights of a published shape, Llama-3-8B by default, `--layers`
# blocks, written by build/bench/kwaai_make_gguf) is kept there and reused. --device vulkan compares the Vulkan
# backends (llama.cpp's Vulkan build; on lavapipe GGML_VK_VISIBLE_DEVICES=0 is set).
set -euo pipefail
cd "$(dirname "$0")/.."

type=q4_0 shape=llama-3-8b layers=4 prompts=128,512 gen=32 rounds=3 device=cpu json_out=""
threads=$(lscpu -p=CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l)
[ "$threads" -ge 1 ] 2>/dev/null || threads=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --type) type=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --prompts) prompts=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "vs_llamacpp.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$type" in q4_0|q8_0|f16|q4_k|q5_k|q6_k|q4_k_m) ;;
  *) echo "--type must be q4_0, q8_0, f16, q4_k, q5_k, q6_k or q4_k_m" >&2; exit 2 ;; esac
case "$device" in cpu|vulkan) ;; *) echo "--device must be cpu or vulkan" >&2; exit 2 ;; esac

kwaainet=build/cli/kwaainet
make_gguf=build/bench/kwaai_make_gguf
if [ ! -x "$kwaainet" ] || [ ! -x "$make_gguf" ]; then
  echo "vs_llamacpp.sh: build first (./setup.sh): $kwaainet and $make_gguf are needed" >&2
  exit 2
fi

NLC_VERSION=3.21.1
scratch=${KWAAI_SCRATCH:-$HOME/.cache/kwaainet/vs_llamacpp}
mkdir -p "$scratch"
if [ ! -f "$scratch/node_modules/node-llama-cpp/package.json" ] ||
   ! grep -q "\"version\": \"$NLC_VERSION\"" "$scratch/node_modules/node-llama-cpp/package.json"; then
  echo "[vs] installing node-llama-cpp@$NLC_VERSION into $scratch" >&2
  (cd "$scratch" && { [ -f package.json ] || npm init -y >/dev/null; } &&
   npm install --no-audit --no-fund "node-llama-cpp@$NLC_VERSION" >/dev/null)
fi
cp bench/llamacpp_bench.mjs "$scratch/llamacpp_bench.mjs"

gguf="$scratch/${shape}-${layers}L-${type}.gguf"
if [ ! -f "$gguf" ]; then
  echo "[vs] writing $gguf" >&2
  "$make_gguf" --shape "$shape" --layers "$layers" --type "$type" --out "$gguf.tmp" >&2
  mv "$gguf.tmp" "$gguf"
fi

kw_device=cpu nlc_gpu=false
if [ "$device" = vulkan ]; then
  kw_device=vulkan:0 nlc_gpu=vulkan
  export GGML_VK_VISIBLE_DEVICES=${GGML_VK_VISIBLE_DEVICES:-0}
fi

cpu_model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "[vs] $cpu_model, $threads threads, $gguf, device $device" >&2

run_kwaainet() {  # prompt -> one JSON line
  local line
  line=$("$kwaainet" bench --model "$gguf" --devices "$kw_device" --prompt-len "$1" \
           --gen-len "$gen" --json 2>/dev/null | tail -1)
  python3 -c '
import json, sys
j = json.loads(sys.argv[1]); rows = {r["phase"]: r for r in j["rows"]}; d = j["devices"][0]
print(json.dumps({"engine": "kwaainet", "prompt_len": int(sys.argv[2]),
                  "prefill_tokens_per_s": rows["prefill"]["tokens_per_s"],
                  "decode_tokens_per_s": rows["decode"]["tokens_per_s"],
                  "copy_bandwidth_gb_s": d["copy_bandwidth_gb_s"],
                  "description": d["description"]}))' "$line" "$1"
}
run_llamacpp() {
  (cd "$scratch" && node llamacpp_bench.mjs "$gguf" --prompt "$1" --gen "$gen" \
     --threads "$threads" --gpu "$nlc_gpu" 2>/dev/null | tail -1)
}

IFS=, read -r -a plist <<<"$prompts"
for ((r = 1; r <= rounds; r++)); do
  for p in "${plist[@]}"; do
    # Alternate which engine goes first, so drifts of the machine hit both alike.
    if ((r % 2)); then order="kwaainet llamacpp"; else order="llamacpp kwaainet"; fi
    for e in $order; do
      echo "[vs] round $r/$rounds, prompt $p: $e" >&2
      "run_$e" "$p" | sed "s/^{/{\"round\": $r, /" >>"$results"
    done
  done
done

python3 - "$results" "$cpu_model" "$threads" "$type" "$layers" "$gen" "$device" "$json_out" \
  "$shape" <<'EOF'
import json, statistics, sys
path, cpu, threads, typ, layers, gen, device, json_out, shape = sys.argv[1:10]
rows = [json.loads(l) for l in open(path) if l.strip()]
def med(engine, p, key):
    v = [r[key] for r in rows if r["engine"] == engine and r["prompt_len"] == p]
    return statistics.median(v) if v else float("nan")
bw = [r["copy_bandwidth_gb_s"] for r in rows if r["engine"] == "kwaainet"]
desc = next((r["description"] for r in rows if r["engine"] == "kwaainet"), "")
print(f"CPU: {cpu}; {threads} threads; kwaainet {device}: {desc}")
print(f"copy bandwidth (kwaainet's probe, same runs): median {statistics.median(bw):.1f} GB/s, "
      f"range {min(bw):.1f}-{max(bw):.1f}")
print(f"file: {shape}-shaped, {layers} blocks + embeddings + LM head, {typ}; "
      f"decode {gen} tokens after the prompt; medians of {len(bw) // len(set(r['prompt_len'] for r in rows))} rounds")
print(f"{'prompt':>6} {'phase':>8} {'kwaainet t/s':>13} {'llama.cpp t/s':>14} {'ratio':>7}")
summary = []
for p in sorted(set(r["prompt_len"] for r in rows)):
    for phase in ("prefill", "decode"):
        k = med("kwaainet", p, f"{phase}_tokens_per_s")
        l = med("llama.cpp", p, f"{phase}_tokens_per_s")
        print(f"{p:>6} {phase:>8} {k:>13.2f} {l:>14.2f} {k / l:>6.2f}x")
        summary.append({"prompt_len": p, "phase": phase, "kwaainet": k, "llama_cpp": l,
                        "ratio": k / l})
if json_out:
    json.dump({"cpu": cpu, "threads": int(threads), "type": typ, "shape": shape,
               "layers": int(layers),
               "device": device, "copy_bandwidth_gb_s": bw, "runs": rows,
               "summary": summary}, open(json_out, "w"), indent=1)
EOF
