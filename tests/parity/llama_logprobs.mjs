#!/usr/bin/env node
// Reference log-probabilities from llama.cpp (through node-llama-cpp 3.21.1's prebuilt CPU
// library) for an exact token-id prompt, in the same layout as
// `rawflow generate --logprobs-out`: raw little-endian float32, one row of `vocab` natural-log
// probabilities per prompt position; row i is the distribution of the token after position i.
//
// Usage: node tests/parity/llama_logprobs.mjs MODEL.gguf TOKENS OUT.f32
//            [--threads N] [--ctx N] [--batch N] [--no-suppress] [--verbose]
//   TOKENS  comma-separated ids ("2,105,2364") or @FILE holding ids separated by commas/spaces
//   --no-suppress  keep the ids of tokenizer.ggml.suppress_tokens (see below)
// Env:    RAWFLOW_NPM_DIR  directory holding node_modules (default: <repo>/tests/npm)
// Prints the vocabulary size, token count and timings to stderr; nothing to stdout.
//
// Settings chosen to make llama.cpp as close to an f32 implementation as it can be:
// F32 K/V cache (its F16 default costs accuracy on Gemma 4's unscaled 256/512-wide dot
// products), flash attention off (computed at lower precision), the whole prompt in one
// batch/ubatch (like rawflow's single prefill pass), and a sampler with no temperature,
// penalties or bias, so the returned probabilities are plain softmax(logits).
//
// Suppressed ids: llama.cpp's own tools (common/sampling.cpp: llama-cli, llama-server) put a
// -inf logit bias on the file's tokenizer.ggml.suppress_tokens (Gemma 4: <image|>, <audio|>),
// but node-llama-cpp's sampler does not. This script re-applies it (those ids -> -inf, the rest
// renormalised), so its rows are the distribution llama.cpp samples from, as rawflow's are.
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const usage =
  "usage: llama_logprobs.mjs MODEL.gguf TOKENS(comma list or @file) OUT.f32 " +
  "[--threads N] [--ctx N] [--batch N] [--no-suppress] [--verbose]";

function fail(message) {
  process.stderr.write(`llama_logprobs: ${message}\n`);
  process.exit(2);
}

function parsePositiveInt(flag, text) {
  if (!/^\d+$/.test(text ?? "") || Number(text) <= 0) fail(`${flag} needs a positive integer, got '${text}'`);
  return Number(text);
}

function parseArgs(argv) {
  const positional = [];
  const opts = { threads: 2, ctx: 0, batch: 0, suppress: true, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--threads") opts.threads = parsePositiveInt(arg, argv[++i]);
    else if (arg === "--ctx") opts.ctx = parsePositiveInt(arg, argv[++i]);
    else if (arg === "--batch") opts.batch = parsePositiveInt(arg, argv[++i]);
    else if (arg === "--no-suppress") opts.suppress = false;
    else if (arg === "--verbose") opts.verbose = true;
    else if (arg === "-h" || arg === "--help") {
      process.stderr.write(usage + "\n");
      process.exit(0);
    } else if (arg.startsWith("--")) fail(`unknown option ${arg}\n${usage}`);
    else positional.push(arg);
  }
  if (positional.length !== 3) fail(usage);
  [opts.model, opts.tokensArg, opts.out] = positional;
  return opts;
}

function parseTokens(tokensArg) {
  const text = tokensArg.startsWith("@") ? fs.readFileSync(tokensArg.slice(1), "utf8") : tokensArg;
  const parts = text.split(/[\s,]+/).filter((s) => s.length > 0);
  if (parts.length === 0) fail(`no token ids in '${tokensArg}'`);
  return parts.map((s) => {
    if (!/^\d+$/.test(s)) fail(`token id '${s}' is not a non-negative integer`);
    return Number(s);
  });
}

async function importNodeLlamaCpp() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const npmDir = process.env.RAWFLOW_NPM_DIR ?? path.resolve(here, "..", "npm");
  const entry = path.join(npmDir, "node_modules", "node-llama-cpp", "dist", "index.js");
  if (!fs.existsSync(entry)) fail(`${entry} not found: run 'npm ci' in ${npmDir}`);
  return import(pathToFileURL(entry).href);
}

const opts = parseArgs(process.argv.slice(2));
const tokens = parseTokens(opts.tokensArg);
if (!fs.existsSync(opts.model)) fail(`model ${opts.model} not found`);

const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
const t0 = performance.now();
const llama = await getLlama({
  gpu: false,
  build: "never", // never download or compile: the prebuilt zen4/x64 library must be there
  maxThreads: opts.threads,
  logLevel: opts.verbose ? LlamaLogLevel.debug : LlamaLogLevel.warn,
  logger: (level, message) => process.stderr.write(`[llama.cpp ${level}] ${message.trimEnd()}\n`),
});
const model = await llama.loadModel({ modelPath: opts.model, gpuLayers: 0 });
const tLoaded = performance.now();

// An id past the vocabulary makes llama_decode fail with an opaque "Eval has failed".
const embd = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight");
const fileVocab = Number(embd?.dimensions?.[1]);
if (Number.isInteger(fileVocab)) {
  const badId = tokens.find((id) => id >= fileVocab);
  if (badId !== undefined) fail(`token id ${badId} is outside the vocabulary (${fileVocab}) of ${opts.model}`);
}

const suppressIds = opts.suppress ? (model.fileInfo.metadata?.tokenizer?.ggml?.suppress_tokens ?? []) : [];

// The context must hold the whole prompt without a context shift (which would drop tokens and
// silently change every later row); llama.cpp rounds n_ctx up to a multiple of 256 itself.
const contextSize = Math.max(opts.ctx, tokens.length + 1);
const batchSize = Math.max(opts.batch, tokens.length);
const context = await model.createContext({
  contextSize,
  batchSize,
  sequences: 1,
  threads: opts.threads,
  flashAttention: false,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();

// Rows are converted and written as each position's probabilities arrive, and the Map is dropped
// at once: a 262144-entry Map costs ~20 MB, so keeping one per position for a 1000-token prompt
// would not fit in memory.
//
// Zero probabilities stay -inf. The addon normalises with a float32 sum over the vocabulary,
// which is off by up to ~1e-4 relative at 262144 entries (a constant offset on the whole row);
// re-normalising with a double sum here removes that bias, since every entry was divided by the
// same wrong sum. Suppressed ids get probability 0 before that sum: the -inf logit bias that
// llama.cpp's own sampler applies.
const fd = fs.openSync(opts.out, "w");
const rowDone = new Uint8Array(tokens.length);
let vocab = 0;
let logRow = null;
let rowOut = null;
let probSumWorst = 0;

function writeRow(i, probs) {
  if (vocab === 0) {
    vocab = probs.size;
    logRow = new Float64Array(vocab);
    rowOut = new Float32Array(vocab);
  } else if (probs.size !== vocab) {
    fail(`position ${i} has ${probs.size} probabilities, an earlier one had ${vocab}`);
  }
  logRow.fill(-Infinity);
  let sum = 0;
  for (const [id, p] of probs) {
    if (id < 0 || id >= vocab) fail(`position ${i}: token id ${id} outside vocab ${vocab}`);
    logRow[id] = Math.log(p);
    sum += p;
  }
  probSumWorst = Math.max(probSumWorst, Math.abs(sum - 1));
  for (const id of suppressIds) {
    if (id >= 0 && id < vocab && logRow[id] > -Infinity) {
      sum -= Math.exp(logRow[id]);
      logRow[id] = -Infinity;
    }
  }
  const logSum = Math.log(sum);
  for (let id = 0; id < vocab; id++) rowOut[id] = logRow[id] - logSum;
  fs.writeSync(fd, new Uint8Array(rowOut.buffer), 0, rowOut.byteLength, i * rowOut.byteLength);
  rowDone[i] = 1;
}

// controlledEvaluate feeds exactly these ids: unlike model.tokenize(), it never prepends <bos>.
// That is re-checked below against the sequence's own record of what it evaluated.
const items = tokens.map((id) => [id, { generateNext: { probabilities: true } }]);
const tEvalStart = performance.now();
await sequence.controlledEvaluate(items, {
  onTokenResult(i, result) {
    const probs = result?.next?.probabilities;
    if (probs == null) fail(`no probabilities returned for position ${i}`);
    writeRow(i, probs);
    delete result.next.probabilities;
  },
});
const tEvalEnd = performance.now();
fs.closeSync(fd);

const evaluated = sequence.contextTokens;
if (evaluated.length !== tokens.length || evaluated.some((id, i) => id !== tokens[i])) {
  fail(
    `llama.cpp evaluated ${evaluated.length} tokens [${evaluated.slice(0, 8).join(",")}...] ` +
      `instead of the ${tokens.length} given [${tokens.slice(0, 8).join(",")}...]`,
  );
}
const missing = rowDone.indexOf(0);
if (missing !== -1) fail(`no probabilities returned for position ${missing}`);

process.stderr.write(
  `llama_logprobs: vocab ${vocab}, ${tokens.length} positions, ctx ${context.contextSize}, ` +
    `batch ${batchSize}, threads ${opts.threads}, addon max |sum(p)-1| ${probSumWorst.toExponential(2)} (renormalised)\n` +
    `llama_logprobs: suppressed ids (tokenizer.ggml.suppress_tokens): ` +
    `${suppressIds.length ? suppressIds.join(",") : opts.suppress ? "none in file" : "off (--no-suppress)"}\n` +
    `llama_logprobs: load ${((tLoaded - t0) / 1000).toFixed(2)} s, ` +
    `evaluate + write ${((tEvalEnd - tEvalStart) / 1000).toFixed(2)} s ` +
    `(${((tEvalEnd - tEvalStart) / tokens.length).toFixed(1)} ms/position incl. full-vocab softmax) ` +
    `-> ${opts.out}\n`,
);

await context.dispose();
await model.dispose();
await llama.dispose();
