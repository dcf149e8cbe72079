// gguf_export_vs_llamacpp.sh's llama.cpp side: llama.cpp's tokenizer (node-llama-cpp's prebuilt
// build) reading a GGUF file's tokenizer.ggml.* metadata. One JSON line: {"ids": [[...], ...]},
// one list per corpus line, special tokens written in the text recognised, no BOS added.
//   node llamacpp_tokenize.mjs FILE.gguf corpus.json
import { readFileSync } from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [file, corpusPath] = process.argv.slice(2);
const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
const ids = corpus.map((text) => Array.from(model.tokenize(text, true)));
console.log(JSON.stringify({ ids }));
process.exit(0);
