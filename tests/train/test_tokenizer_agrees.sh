#!/usr/bin/env bash
# The training program's tokenizer (train/vocab.py) against rawflow's on the tokenizer.json it
# writes: every prompt rawflow sends, every vocabulary word alone and after a space, captions,
# random word strings, and text outside the vocabulary (characters and byte fallback). The model
# learnt the ids train/vocab.py makes; rawflow must make the same ones from the same text, or the
# trained model hears its prompts wrongly. Exact equality of ids on every line.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}"
work=${RAWFLOW_TEST_WORK:-/tmp}/train-tokenizer
rm -rf "$work" && mkdir -p "$work"
py=/usr/bin/python3
"$py" - "$RAWFLOW_SOURCE_DIR/train" "$work" <<'PY'
import json, random, sys
sys.path.insert(0, sys.argv[1])
import scenes, vocab
work = sys.argv[2]
tok = vocab.Tokenizer()
json.dump(tok.tokenizer_json(), open(f"{work}/tokenizer.json", "w"), ensure_ascii=False)
texts = []
for p in vocab.TRANSCRIBE_PROMPTS:
    texts += list(vocab.audio_prompt_text(p))
for p in vocab.DESCRIBE_PROMPTS:
    texts += list(vocab.image_prompt_text(p))
texts += vocab.SPEECH_WORDS + [" " + w for w in vocab.SPEECH_WORDS]
rng = random.Random(3)
for i in range(200):
    texts.append(" ".join(rng.choice(vocab.SPEECH_WORDS) for _ in range(rng.randint(1, 12))))
    texts.append(scenes.caption([(rng.choice(vocab.SIZES), rng.choice(vocab.SCENE_COLOURS),
                                  rng.choice(vocab.SHAPES), c) for c in scenes.COLUMNS[: rng.randint(1, 3)]]))
texts += ["Where is the dog? Über straße 東京 🙂", "thethe redred  two\n\nthree\n", "Transcribe this audio.<|audio><|audio|><audio|><turn|>"]
with open(f"{work}/in.jsonl", "w") as f:
    for t in texts:
        f.write(json.dumps(t) + "\n")
with open(f"{work}/expected.jsonl", "w") as f:
    for t in texts:
        f.write(json.dumps(tok.encode(t)) + "\n")
print(f"{len(texts)} texts, vocabulary {len(tok)}")
PY
"$RAWFLOW_BIN" tokenize --model "$work/tokenizer.json" --jsonl "$work/in.jsonl" --out "$work/got.jsonl" --quiet
"$py" - "$work" <<'PY'
import json, sys
work = sys.argv[1]
texts = [json.loads(l) for l in open(f"{work}/in.jsonl")]
want = [json.loads(l) for l in open(f"{work}/expected.jsonl")]
got = [json.loads(l)["ids"] for l in open(f"{work}/got.jsonl")]
bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
for t, w, g in bad[:5]:
    print(f"FAIL: {t!r}\n  train/vocab.py {w}\n  rawflow        {g}")
print(f"{len(texts) - len(bad)} of {len(texts)} texts tokenize identically")
sys.exit(1 if bad or len(got) != len(want) else 0)
PY
