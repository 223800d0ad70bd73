// Reference side of the tokenizer parity test: llama.cpp (through node-llama-cpp) tokenizes each
// line of a JSONL corpus, with and without special-token parsing; each output line is
// {"special": [ids], "plain": [ids]}. Usage: node tokenize_llama.mjs MODEL.gguf CORPUS.jsonl OUT.jsonl
//
// BOS: model.tokenize(text, specialTokens) calls llama.cpp's common_tokenize(vocab, text,
// add_special=false, parse_special=specialTokens), so no BOS is added even though a gemma4
// vocabulary forces add_bos; the ids
// are directly comparable with rawflow's Tokenizer::encode (which never adds BOS). `<bos>` written
// in the text is matched as a control token like any other special string.
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";

const [modelPath, corpusPath, outPath] = process.argv.slice(2);
if (!modelPath || !corpusPath || !outPath) {
    console.error("usage: node tokenize_llama.mjs MODEL.gguf CORPUS.jsonl OUT.jsonl");
    process.exit(2);
}

// node-llama-cpp lives in tests/npm/node_modules, not next to this script.
const npmDir = process.env.RAWFLOW_NPM_DIR ??
    path.join(path.dirname(new URL(import.meta.url).pathname), "..", "npm");
const require = createRequire(path.join(npmDir, "package.json"));
const {getLlama, LlamaLogLevel} = await import(require.resolve("node-llama-cpp"));

// vocabOnly: llama.cpp reads the metadata and the vocabulary and skips every tensor, so a GGUF with
// the gemma4 hyper-parameters (spec §7.1) and tokenizer keys but no tensors is enough. Before the
// real load, node-llama-cpp probes the file with a full load, which logs "missing tensor" for such a
// file; those two lines are expected and dropped (a failed real load still throws).
const probeNoise = /missing tensor|failed to load model/;
const llama = await getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
        if (!probeNoise.test(message)) console.error(`[llama.cpp] ${message.trimEnd()}`);
    },
});
const model = await llama.loadModel({modelPath, vocabOnly: true});

const lines = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length > 0);
const t0 = performance.now();
let out = "";
for (const line of lines) {
    const text = JSON.parse(line);
    out += JSON.stringify({
        special: Array.from(model.tokenize(text, true)),   // parse_special = true
        plain: Array.from(model.tokenize(text, false)),    // parse_special = false
    }) + "\n";
}
const ms = performance.now() - t0;
fs.writeFileSync(outPath, out);
console.error(`llama.cpp: ${lines.length} lines tokenized in ${(ms / 1000).toFixed(3)} s`);
await model.dispose();
await llama.dispose();
