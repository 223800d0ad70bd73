#!/usr/bin/env bash
# Tokenizer parity on the real Gemma 4 vocabulary: llama.cpp's source (the git bundle inside
# node-llama-cpp) ships models/ggml-vocab-gemma-4.gguf (262,144 pieces, 514,906 merges, Gemma 4's
# own special tokens) with llama.cpp's own test cases for it (.inp texts, .out expected ids).
#  1. rawflow on llama.cpp's test cases: every line's ids equal the .out file's.
#  2. rawflow vs llama.cpp (node-llama-cpp, vocab-only load) on the generated >= 2,000-line
#     corpus, special parsing on and off: 100 % identical ids; decode(encode(x)) == x.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}"
work=${RAWFLOW_TEST_WORK:-/tmp}/tokenizer_gemma4_vocab
rm -rf "$work" && mkdir -p "$work"
parity=$RAWFLOW_SOURCE_DIR/tests/parity
bundle=$RAWFLOW_SOURCE_DIR/tests/npm/node_modules/node-llama-cpp/llama/gitRelease.bundle
py=/usr/bin/python3
[ -f "$bundle" ] || { echo "FAIL: $bundle is missing (run scripts/setup.sh)"; exit 1; }
git clone -q --no-checkout "$bundle" "$work/llama"
for f in ggml-vocab-gemma-4.gguf ggml-vocab-gemma-4.gguf.inp ggml-vocab-gemma-4.gguf.out; do
  git -C "$work/llama" show "HEAD:models/$f" > "$work/$f"
done
vocab=$work/ggml-vocab-gemma-4.gguf

# 1. llama.cpp's own cases: texts separated by "\n__ggml_vocab_test__\n", one id line per text.
"$py" - "$work" <<'PYEOF'
import json, sys
work = sys.argv[1]
texts = open(f"{work}/ggml-vocab-gemma-4.gguf.inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
with open(f"{work}/cases.jsonl", "w", encoding="utf-8") as f:
    for t in texts:
        f.write(json.dumps(t) + "\n")
PYEOF
"$RAWFLOW_BIN" tokenize --model "$vocab" --jsonl "$work/cases.jsonl" --out "$work/cases.rawflow.jsonl" --quiet
"$py" - "$work" <<'PYEOF'
import json, sys
work = sys.argv[1]
ours = [json.loads(l)["ids"] for l in open(f"{work}/cases.rawflow.jsonl", encoding="utf-8")]
lines = open(f"{work}/ggml-vocab-gemma-4.gguf.out").read().split("\n")
ref = [[int(t) for t in l.split()] for l in lines[:len(ours)]]
bad = [i for i, (a, b) in enumerate(zip(ours, ref)) if a != b]
print(f"llama.cpp's own gemma-4 cases: {len(ours) - len(bad)}/{len(ours)} identical")
for i in bad[:5]:
    print(f"  case {i + 1}: rawflow {ours[i][:12]} llama.cpp {ref[i][:12]}")
if bad or len(ours) < 40:
    sys.exit("FAIL")
PYEOF

# 2. The generated corpus against llama.cpp itself.
"$py" "$parity/make_tokenizer_corpus.py" "$work/corpus.jsonl"
"$RAWFLOW_BIN" tokenize --model "$vocab" --jsonl "$work/corpus.jsonl" --out "$work/rawflow.jsonl" --quiet
"$RAWFLOW_BIN" tokenize --model "$vocab" --jsonl "$work/corpus.jsonl" --no-special --out "$work/rawflow_plain.jsonl" --quiet
node "$parity/tokenize_llama.mjs" "$vocab" "$work/corpus.jsonl" "$work/llama.jsonl"
"$py" - "$work" <<'PYEOF'
import json, sys
work = sys.argv[1]
load = lambda p: [json.loads(l) for l in open(f"{work}/{p}", encoding="utf-8") if l.strip()]
corpus, ours, plain, ref = load("corpus.jsonl"), load("rawflow.jsonl"), load("rawflow_plain.jsonl"), load("llama.jsonl")
n = len(corpus)
if n < 2000 or not (n == len(ours) == len(plain) == len(ref)):
    sys.exit(f"FAIL: line counts: corpus {n}, rawflow {len(ours)}/{len(plain)}, llama.cpp {len(ref)}")
same = sum(o["ids"] == r["special"] for o, r in zip(ours, ref))
same_plain = sum(p["ids"] == r["plain"] for p, r in zip(plain, ref))
round_trip = sum(o["decoded"] == c.replace("\u2581", " ") for o, c in zip(ours, corpus))
print(f"real Gemma 4 vocabulary, {n} lines: ids identical (special on) {same}/{n}, "
      f"(special off) {same_plain}/{n}, decode(encode(x)) == x {round_trip}/{n}")
if same != n or same_plain != n or round_trip != n:
    sys.exit("FAIL")
print("PASS")
PYEOF
