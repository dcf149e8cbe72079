// llama.cpp's side of bench/vs_llamacpp.sh, through the node-llama-cpp package (its prebuilt
// llama.cpp): loads the GGUF, evaluates a prompt of random ids in one batch (prefill), then
// generates greedily one token at a time (decode), and prints one JSON line.
//   node llamacpp_bench.mjs FILE.gguf --prompt 128 --gen 32 --threads 2 [--gpu vulkan]
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const args = process.argv.slice(2);
const model_path = args[0];
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const prompt_len = Number(opt("--prompt", "128"));
const gen_len = Number(opt("--gen", "32"));
const threads = Number(opt("--threads", "2"));
const gpu = opt("--gpu", "false");

const llama = await getLlama({
  gpu: gpu === "false" ? false : gpu,
  build: "never",
  maxThreads: threads,
  logLevel: LlamaLogLevel.error,
});
const model = await llama.loadModel({ modelPath: model_path, gpuLayers: gpu === "false" ? 0 : "max" });
const context = await model.createContext({
  contextSize: prompt_len + gen_len + 64,
  batchSize: Math.max(prompt_len, 8),
  threads: { ideal: threads, min: threads },
  sequences: 1,
});
const seq = context.getSequence();
// Random ids among the plain vocabulary entries (past the 259 special and byte tokens that
// kwaai_make_gguf writes first), within the file's vocabulary.
const meta = model.fileInfo.metadata;
const vocab = meta?.llama?.vocab_size ?? meta?.tokenizer?.ggml?.tokens?.length ?? 32000;
let rng = 12345;
const next_id = () => {
  rng = (rng * 1103515245 + 12345) % 2147483648;
  return 259 + (rng % Math.max(1, Math.min(20000, vocab - 259)));
};
const prompt = Array.from({ length: prompt_len }, next_id);

// Warm-up, not timed: first touch of the weights, thread start, and (on Vulkan) the pipelines
// of both the batched and the one-token shapes, which llama.cpp compiles on first use.
await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 8));
let warm = 0;
for await (const tok of seq.evaluate([next_id()], { temperature: 0 })) {
  if (++warm >= 3) break;
}
await seq.clearHistory();

const t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
const t1 = performance.now();
let produced = 0;
const t2 = performance.now();
for await (const tok of seq.evaluate([next_id()], { temperature: 0 })) {
  if (++produced >= gen_len) break;
}
const t3 = performance.now();
console.log(
  JSON.stringify({
    engine: "llama.cpp",
    gpu,
    prompt_len,
    gen_len: produced,
    threads,
    prefill_tokens_per_s: (prompt_len * 1000) / (t1 - t0),
    decode_tokens_per_s: (produced * 1000) / (t3 - t2),
  }),
);
await context.dispose();
await model.dispose();
