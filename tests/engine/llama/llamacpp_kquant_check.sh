#!/usr/bin/env bash
# K-quant GGUF files read by kwaainet and by llama.cpp itself (the prebuilt llama.cpp of the npm
# package node-llama-cpp, pinned 3.21.1): the same bytes must give the same greedy ids. Files of
# each K type (and a Q4_K + Q6_K mix as in Q4_K_M) are written by kwaai_make_gguf (random codes
# and fixed sub-block scales, a TinyLlama-shaped 2-block model), and by `kwaainet quantize` of
# an f16 file of that shape (q4_k_m, q5_k_m, q6_k, q4_0); 8 prompts of random ids, 3 greedy ids
# each. A wrong value rule gives unrelated ids (vocabulary 32000); random weights
# give near-tie logits, so one prompt in eight may part ways where the two engines' activation
# rounding differs (llama.cpp quantizes activations per 256 values for K-quants, kwaainet per
# 32): at least 6 of 8 first ids must be equal per file.
#   llamacpp_kquant_check.sh BUILD_DIR
# Skips (exit 77) unless node and node-llama-cpp are installed in KWAAI_SCRATCH (default
# ~/.cache/kwaainet/vs_llamacpp, where bench/vs_llamacpp.sh installs it); it installs nothing.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
scratch=${KWAAI_SCRATCH:-$HOME/.cache/kwaainet/vs_llamacpp}
if ! command -v node >/dev/null || ! grep -qs '"version": "3.21.1"' \
     "$scratch/node_modules/node-llama-cpp/package.json"; then
  echo "skip: node-llama-cpp@3.21.1 not installed in $scratch (bench/vs_llamacpp.sh installs it)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/llamacpp_greedy.mjs" "$scratch/kwaai_llamacpp_greedy.mjs"
fail=0
# Files written directly (random codes) and files from `kwaainet quantize` of an f16 file
# (llama-quantize's per-tensor mix, this project's encoders).
"$build/bench/kwaai_make_gguf" --shape tinyllama-1.1b --layers 2 --type f16 --out "$work/f16.gguf" >/dev/null
for t in q4_k q5_k q6_k q4_k_m quantize:q4_k_m quantize:q5_k_m quantize:q6_k quantize:q4_0; do
  gguf="$work/${t/:/-}.gguf"
  if [[ $t == quantize:* ]]; then
    "$build/cli/kwaainet" quantize "$work/f16.gguf" "$gguf" --type "${t#quantize:}" >/dev/null
  else
    "$build/bench/kwaai_make_gguf" --shape tinyllama-1.1b --layers 2 --type "$t" --out "$gguf" >/dev/null
  fi
  prompts="" ours=()
  for s in 1 2 3 4 5 6 7 8; do
    p=$(python3 -c "import random; r = random.Random($s); print(','.join(str(r.randrange(259, 30000)) for _ in range(6)))")
    prompts="${prompts:+$prompts;}$p"
    ours+=("$("$build/cli/kwaainet" generate --model "$gguf" --prompt-ids "$p" --max-new-tokens 3 \
               --device cpu --json 2>/dev/null | tail -1)")
  done
  theirs=$(cd "$scratch" && node kwaai_llamacpp_greedy.mjs "$gguf" --prompts "$prompts" --gen 3 2>/dev/null | tail -1)
  python3 - "$t" "$theirs" "${ours[@]}" <<'PY' || fail=1
import json, sys
t, theirs, ours = sys.argv[1], json.loads(sys.argv[2])["ids"], [json.loads(x)["ids"] for x in sys.argv[3:]]
first = sum(a[0] == b[0] for a, b in zip(ours, theirs))
full = sum(a == b for a, b in zip(ours, theirs))
print(f"{t}: first id equal on {first}/{len(theirs)} prompts, all 3 ids on {full}/{len(theirs)}")
for a, b in zip(ours, theirs):
    print(f"  kwaainet {a}  llama.cpp {b}")
sys.exit(0 if first >= 6 else 1)
PY
done
exit $fail
