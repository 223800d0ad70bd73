#!/usr/bin/env bash
# A smoke run of the training program (train/train.py --smoke: 200 cached utterances, 40 steps,
# its evaluation on 4 clips per set): the loss must fall, and what it exports must load in rawflow
# as a Hugging Face directory and, through `rawflow model convert`, as the GGUF pair, and run
# `transcribe` and `describe` on real media from the test sets. Then three_way_parity.sh on it:
# rawflow = the training program's forward (audio and image prompts, both weight layouts) within
# 1e-3, and llama.cpp = rawflow on the converted text GGUF.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}"
work=${RAWFLOW_TEST_WORK:-/tmp}/train-smoke
rm -rf "$work" && mkdir -p "$work"
py=/usr/bin/python3
"$py" "$RAWFLOW_SOURCE_DIR/train/train.py" --smoke --work "$work/run" --export "$work/hf" | tee "$work/train.log"

"$py" - "$work/train.log" <<'PY'
import re, sys
steps = [tuple(map(float, m.groups())) for m in
         re.finditer(r"step (\d+)/\d+ speech ([\d.]+) scene ([\d.]+)", open(sys.argv[1]).read())]
if len(steps) < 2:
    sys.exit(f"FAIL: {len(steps)} loss lines in the log")
(s0, a0, b0), (s1, a1, b1) = steps[0], steps[-1]
print(f"speech loss {a0:.3f} at step {s0:.0f} -> {a1:.3f} at step {s1:.0f}; scene {b0:.3f} -> {b1:.3f}")
# Both fall by at least a fifth: from ~ln(931) = 6.8 nats the token frequencies alone take it lower.
if not (a1 < 0.8 * a0 and b1 < 0.8 * b0):
    sys.exit("FAIL: the loss did not fall by a fifth")
PY

"$py" "$RAWFLOW_SOURCE_DIR/train/testsets.py" "$work/test" --speech 1 --scenes 1 --sets kal_diphone >/dev/null
"$RAWFLOW_BIN" transcribe --model "$work/hf" --greedy -n 8 "$work/test/speech/kal_diphone/000.wav" >"$work/t.txt"
"$RAWFLOW_BIN" model convert "$work/hf" --out "$work/smoke.gguf" >/dev/null
"$RAWFLOW_BIN" describe --model "$work/smoke.gguf" --mmproj "$work/mmproj-smoke.gguf" --greedy -n 8 \
  --budget 70 "$work/test/scenes/000.png" >"$work/d.txt"
echo "transcribe: $(cat "$work/t.txt")"
echo "describe: $(cat "$work/d.txt")"
echo "smoke training: loss falls, the export loads and runs in rawflow (HF directory and GGUF pair)"
RAWFLOW_DEMO_MODEL=$work/hf bash "$RAWFLOW_SOURCE_DIR/tests/train/three_way_parity.sh"
