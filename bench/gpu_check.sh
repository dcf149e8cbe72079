#!/usr/bin/env bash
# One-shot GPU check, for a machine that has a GPU for a few minutes (x86-64, NVIDIA H100/H200,
# Python 3 + PyTorch + CUDA, no Debian packages, no network). Run bench/gpu_pack.sh here first;
# build/gpu_pack.tar.xz travels with the checkout. In at most ~8 minutes this
#   1. lists the devices (kwaainet devices --json);
#   2. runs the Vulkan op tests on the real device (kernel_ops_tests '*/vulkan');
#   3. measures op throughput (kwaainet bench --ops --devices vulkan:0 --json);
#   4. times a Llama-3-8B-shaped span, decode (context 512 and 4096) and prefill-512, in Q4_0,
#      Q8_0 and F16 (--synthetic: nothing large travels);
#   5. times the same span in PyTorch fp16 eager on the same GPU (bench/torch_llama_ref.py), with
#      the device's copy bandwidth and matmul rates;
# and writes gpu_check.json and gpu_check.md (plus every step's log) to $OUT.
#
#   OUT=/some/dir bench/gpu_check.sh [--quick]     (--quick: stories260K shapes, for a dry run)
#
# Each step has its own time limit and records its exit status; a failing step does not stop
# the others. Figures from a real GPU go in docs/performance.md with the GPU's name.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build/gpu_check_out}
mkdir -p "$OUT"
quick=0
[ "${1:-}" = "--quick" ] && quick=1

pack=${KWAAI_GPU_PACK:-build/gpu_pack}
if [ ! -x "$pack/bin/kwaainet" ]; then
  if [ -f build/gpu_pack.tar.xz ]; then
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      build/gpu_pack.tar.xz build
  else
    echo "gpu_check.sh: no $pack and no build/gpu_pack.tar.xz (run bench/gpu_pack.sh)" >&2
    exit 2
  fi
fi
# The bundled loader runs the binaries on the bundled glibc and libraries; the GPU driver is
# found by the Vulkan loader in the machine's own ICD directories.
ld=("$pack/lib/ld-linux-x86-64.so.2" --library-path "$pack/lib")
kw=("${ld[@]}" "$pack/bin/kwaainet")
optests=("${ld[@]}" "$pack/bin/kernel_ops_tests")

steps="$OUT/steps.tsv"
: >"$steps"
step() {  # name limit_s command...
  local name=$1 limit=$2
  shift 2
  local t0 rc
  t0=$(date +%s%N)
  timeout "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.log"
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((($(date +%s%N) - t0) / 1000000))" >>"$steps"
  echo "[gpu_check] $name: exit $rc" >&2
}

if [ "$quick" = 1 ]; then
  shape=stories260k layers=5 prompt=32 long=128 gen=8
else
  shape=llama-3-8b layers=2 prompt=512 long=4096 gen=32
fi

step devices 30 "${kw[@]}" devices --json
step vulkan_tests 150 "${optests[@]}" --gtest_filter='*/vulkan' \
  --gtest_output="json:$OUT/vulkan_tests.json"
ops_flags=()
[ "$quick" = 1 ] && ops_flags=(--quick)
step ops 60 "${kw[@]}" bench --ops "${ops_flags[@]}" --devices vulkan:0 --json
for q in q4_0 q8_0 f16; do
  step "span_$q" 60 "${kw[@]}" bench --synthetic "$shape" --layers "$layers" --quant "$q" \
    --prompt-len "$prompt" --gen-len "$gen" --devices vulkan:0 --json
done
step span_q4_0_long 60 "${kw[@]}" bench --synthetic "$shape" --layers "$layers" \
  --quant q4_0 --prompt-len "$long" --gen-len 8 --devices vulkan:0 --json
if [ "$quick" = 1 ]; then
  step torch 60 python3 bench/torch_llama_ref.py --layers 1 --prompt 32 --gen 4 --ctx 64 \
    --json "$OUT/torch.json"
else
  step torch 120 python3 bench/torch_llama_ref.py --layers "$layers" --prompt "$prompt" \
    --gen "$gen" --ctx "$long" --json "$OUT/torch.json"
fi

python3 - "$OUT" "$shape" "$layers" <<'EOF'
import json, os, sys
out, shape, layers = sys.argv[1], sys.argv[2], int(sys.argv[3])

def load(name):
    # A step's stdout is one JSON document (possibly indented) or ends with a JSON line.
    for path in (os.path.join(out, name + ".out"), os.path.join(out, name + ".json")):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        for candidate in (text, text.splitlines()[-1] if text else ""):
            try:
                return json.loads(candidate)
            except ValueError:
                pass
    return None

steps = [l.split("\t") for l in open(os.path.join(out, "steps.tsv")) if l.strip()]
doc = {"steps": [{"name": s[0], "exit": int(s[1]), "seconds": int(s[2]) / 1000} for s in steps],
       "shape": shape, "layers": layers}
devs = load("devices") or {}
vk = (devs.get("vulkan") or [{}])[0]
doc["gpu"] = vk.get("name", "none")
doc["driver"] = vk.get("driver_info", "")
ops = load("ops") or {}
doc["ops"] = ops
copy = next((r["gb_per_s"] for r in ops.get("rows", []) if r.get("op", "").startswith("copy")),
            None)
doc["copy_bandwidth_gb_s"] = copy
spans = {q: load("span_" + q) for q in ("q4_0", "q8_0", "f16")}
spans["q4_0_long"] = load("span_q4_0_long")
doc["spans"] = spans
torch = load("torch") or {}
doc["torch"] = torch
try:
    tests = json.load(open(os.path.join(out, "vulkan_tests.json")))
    doc["vulkan_tests"] = {"tests": tests.get("tests"), "failures": tests.get("failures")}
except Exception:
    doc["vulkan_tests"] = None
json.dump(doc, open(os.path.join(out, "gpu_check.json"), "w"), indent=1)

def row(span, phase):
    if not span:
        return None
    return next((r for r in span.get("rows", []) if r["phase"] == phase), None)

md = [f"# GPU check: {doc['gpu']}", "", f"driver: {doc['driver']}", ""]
vt = doc["vulkan_tests"]
md.append(f"Vulkan op tests: {vt['tests'] - vt['failures']}/{vt['tests']} passed" if vt else
          "Vulkan op tests: no result")
md.append(f"copy bandwidth (kwaainet): {copy:.1f} GB/s" if copy else "copy bandwidth: no result")
if "copy_bandwidth_gb_s" in torch:
    md.append(f"copy bandwidth (torch): {torch['copy_bandwidth_gb_s']:.1f} GB/s; torch fp32 "
              f"matmul {torch['fp32_matmul_tflops']:.1f} TFLOP/s, fp16 "
              f"{torch['fp16_matmul_tflops']:.1f} TFLOP/s")
elif "error" in torch:
    md.append(f"torch: {torch['error']}")
md += ["", "| op | ms | GB/s | of copy |", "| --- | --- | --- | --- |"]
for r in ops.get("rows", []):
    frac = r.get("fraction_of_copy_bandwidth")
    md.append(f"| {r.get('op')} | {r.get('ms', 0):.3f} | {r.get('gb_per_s', 0):.1f} | "
              f"{'' if not frac else f'{100 * frac:.0f}%'} |")
md += ["", f"{shape}, {layers} blocks (tokens/s of the blocks; 32-block equivalent for 8B):", "",
       "| weights | phase | tokens/s | 32-block t/s | roofline |", "| --- | --- | --- | --- | --- |"]
for q, span in spans.items():
    for phase in ("prefill", "decode"):
        r = row(span, phase)
        if r:
            md.append(f"| {q} | {phase} | {r['blocks_tokens_per_s']:.1f} | "
                      f"{r['blocks_tokens_per_s'] * layers / 32:.2f} | "
                      f"{100 * r['roofline_fraction']:.0f}% |")
if "decode_tokens_per_s" in torch:
    md += ["", "PyTorch fp16 eager, same span: prefill "
           f"{torch['prefill_tokens_per_s']:.1f} t/s, decode {torch['decode_tokens_per_s']:.1f} t/s"
           + (f", decode at {torch['decode_ctx']} {torch['decode_long_tokens_per_s']:.1f} t/s"
              if "decode_long_tokens_per_s" in torch else "")]
md += ["", "| step | exit | seconds |", "| --- | --- | --- |"]
md += [f"| {s['name']} | {s['exit']} | {s['seconds']:.1f} |" for s in doc["steps"]]
open(os.path.join(out, "gpu_check.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
