// tests/engine/llama/llamacpp_kquant_check.sh's llama.cpp side: llama.cpp's greedy continuations (node-llama-cpp's prebuilt build) of prompts of token ids,
// one JSON line: {"ids": [[...], ...]}.
//   node llamacpp_greedy.mjs FILE.gguf --prompts "1,2,3;4,5,6" --gen 3
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const prompts = opt("--prompts", "").split(";").map((p) => p.split(",").map(Number));
const gen = Number(opt("--gen", "3"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: args[0], gpuLayers: 0 });
const longest = Math.max(...prompts.map((p) => p.length));
const context = await model.createContext({ contextSize: longest + gen + 16, sequences: 1 });
const seq = context.getSequence();
const all = [];
for (const ids of prompts) {
  await seq.clearHistory();
  const out = [];
  for await (const tok of seq.evaluate(ids, { temperature: 0 })) {
    out.push(tok);
    if (out.length >= gen) break;
  }
  all.push(out);
}
console.log(JSON.stringify({ ids: all }));
process.exit(0);
