#!/usr/bin/env node
// Prefill / decode throughput of llama.cpp through node-llama-cpp 3.21.1's prebuilt CPU library,
// measured the way llama-bench measures it, so the numbers sit next to bench/llama_native.sh's
// llama-bench and rawflow's own bench. The native build is the stronger peer (its BF16 prefill
// was ~2x this library's on the 2-core AVX-512 machines); this one is here because it needs no
// 7-minute compile.
//
// Usage: node bench/llama_bench_npm.mjs MODEL.gguf [-p 512] [-n 64] [--threads 2] [--reps 3]
//            [--fa on|off|auto] [--no-warmup] [--verbose]
// Env:   RAWFLOW_NPM_DIR  directory holding node_modules (default: <repo>/tests/npm)
//
// What is timed (mirrors llama-bench's test_prompt / test_gen):
//   ppP  one llama_decode of P tokens (<bos> then random ids) into an empty KV cache, logits for
//        the last token only; t/s = P / wall time.
//   tgN  N llama_decode calls of one token each into an empty KV cache, logits every step, next
//        id random (not sampled, so generation cannot stop early); t/s = N / wall time.
// Defaults as llama-bench: F16 KV cache, flash attention "auto", ubatch = P.
// Each of the --reps runs starts from a cleared sequence; one untimed warm-up run precedes them.
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const usage =
  "usage: llama_bench_npm.mjs MODEL.gguf [-p 512] [-n 64] [--threads 2] [--reps 3] " +
  "[--fa on|off|auto] [--no-warmup] [--verbose]";

function fail(message) {
  process.stderr.write(`llama_bench_npm: ${message}\n`);
  process.exit(2);
}

function parseCount(flag, text, allowZero) {
  if (!/^\d+$/.test(text ?? "") || (!allowZero && Number(text) === 0)) fail(`${flag} needs a count, got '${text}'`);
  return Number(text);
}

function parseArgs(argv) {
  const opts = { prompt: 512, gen: 64, threads: 2, reps: 3, fa: "auto", warmup: true, verbose: false };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-p" || arg === "--n-prompt") opts.prompt = parseCount(arg, argv[++i], true);
    else if (arg === "-n" || arg === "--n-gen") opts.gen = parseCount(arg, argv[++i], true);
    else if (arg === "-t" || arg === "--threads") opts.threads = parseCount(arg, argv[++i], false);
    else if (arg === "-r" || arg === "--reps") opts.reps = parseCount(arg, argv[++i], false);
    else if (arg === "--fa") {
      opts.fa = argv[++i];
      if (!["on", "off", "auto"].includes(opts.fa)) fail(`--fa takes on, off or auto, got '${opts.fa}'`);
    } else if (arg === "--no-warmup") opts.warmup = false;
    else if (arg === "--verbose") opts.verbose = true;
    else if (arg === "-h" || arg === "--help") {
      process.stdout.write(usage + "\n");
      process.exit(0);
    } else if (arg.startsWith("-")) fail(`unknown option ${arg}\n${usage}`);
    else positional.push(arg);
  }
  if (positional.length !== 1) fail(usage);
  opts.model = positional[0];
  return opts;
}

async function importNodeLlamaCpp() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const npmDir = process.env.RAWFLOW_NPM_DIR ?? path.resolve(here, "..", "tests", "npm");
  const entry = path.join(npmDir, "node_modules", "node-llama-cpp", "dist", "index.js");
  if (!fs.existsSync(entry)) fail(`${entry} not found: run 'npm ci' in ${npmDir}`);
  return import(pathToFileURL(entry).href);
}

// Deterministic ids so repeated runs decode the same work (llama-bench uses std::rand()).
function makeRandomIds(seed) {
  let state = seed >>> 0;
  return (vocab) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % vocab;
  };
}

function stats(values) {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1) : 0;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { mean, stdev: Math.sqrt(variance), median };
}

const opts = parseArgs(process.argv.slice(2));
if (!fs.existsSync(opts.model)) fail(`model ${opts.model} not found`);
if (opts.prompt === 0 && opts.gen === 0) fail("nothing to do: -p 0 and -n 0");

const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
const llama = await getLlama({
  gpu: false,
  build: "never",
  maxThreads: opts.threads,
  logLevel: opts.verbose ? LlamaLogLevel.debug : LlamaLogLevel.error,
  logger: (level, message) => process.stderr.write(`[llama.cpp ${level}] ${message.trimEnd()}\n`),
});
const model = await llama.loadModel({ modelPath: opts.model, gpuLayers: 0 });
// llama-bench draws ids from the whole vocabulary; its size is token_embd's second dimension.
const embd = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight");
const vocab = Number(embd?.dimensions?.[1] ?? model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length);
const vocabSize = Number.isInteger(vocab) && vocab > 0 ? vocab : null;
const context = await model.createContext({
  contextSize: Math.max(opts.prompt, opts.gen) + 16,
  batchSize: Math.max(opts.prompt, 1),
  sequences: 1,
  threads: opts.threads,
  flashAttention: opts.fa === "auto" ? "auto" : opts.fa === "on",
});
const sequence = context.getSequence();
const nextId = makeRandomIds(42);
// Without the vocabulary size the ids stay below 256, which every gemma4 vocabulary has.
const randomId = () => nextId(vocabSize ?? 256);
const bos = model.tokens.bos;

async function runPrompt() {
  await sequence.clearHistory();
  const ids = Array.from({ length: opts.prompt }, (_, i) => (i === 0 && bos != null ? bos : randomId()));
  const items = ids.map((id, i) => (i === ids.length - 1 ? [id, { generateNext: { token: true } }] : id));
  const t0 = performance.now();
  await sequence.controlledEvaluate(items);
  return (performance.now() - t0) / 1000;
}

async function runGen() {
  await sequence.clearHistory();
  let id = bos ?? randomId();
  const t0 = performance.now();
  for (let i = 0; i < opts.gen; i++) {
    await sequence.controlledEvaluate([[id, { generateNext: { token: true } }]]);
    id = randomId();
  }
  return (performance.now() - t0) / 1000;
}

const release = llama.llamaCppRelease;
process.stdout.write(
  `# node-llama-cpp llama.cpp ${release?.release ?? "?"} (${llama.buildType}), model ${path.basename(opts.model)}, ` +
    `${(model.size / 2 ** 20).toFixed(1)} MiB, threads ${opts.threads}, fa ${opts.fa}, ` +
    `ctx ${context.contextSize}, batch ${context.batchSize}, reps ${opts.reps}\n`,
);

const tests = [];
if (opts.prompt > 0) tests.push({ name: `pp${opts.prompt}`, tokens: opts.prompt, run: runPrompt });
if (opts.gen > 0) tests.push({ name: `tg${opts.gen}`, tokens: opts.gen, run: runGen });
for (const test of tests) {
  if (opts.warmup) await test.run();
  const rates = [];
  for (let r = 0; r < opts.reps; r++) rates.push(test.tokens / (await test.run()));
  const s = stats(rates);
  process.stdout.write(
    `${test.name.padEnd(8)}${s.mean.toFixed(1).padStart(8)} ± ${s.stdev.toFixed(1)} t/s` +
      `   (median ${s.median.toFixed(1)}, runs ${rates.map((v) => v.toFixed(1)).join(" ")})\n`,
  );
}

await context.dispose();
await model.dispose();
await llama.dispose();
