#!/usr/bin/env bash
# Three implementations of a trained Gemma 4 unified model agree (issue #11). Run by
# test_smoke_training.sh on the model its smoke training exports; RAWFLOW_DEMO_MODEL names the
# Hugging Face directory (default: the committed demo model, models/gemma4-rawflow-demo).
#   1. rawflow against the training program's own forward (train/forward.py, float64, GELU through
#      the fp16 table rawflow shares with llama.cpp) on a transcribe prompt with audio and a
#      describe prompt with an image, from the Hugging Face directory (HWC tiles) and from the GGUF
#      pair `rawflow model convert` writes (CHW tiles). Bound: max |delta log-prob| <= 1e-3 over
#      every prompt position and vocabulary entry, argmax equal everywhere. rawflow sums in f32;
#      measured 6e-4 on random weights (the more sensitive case), 7e-5-2.5e-4 on the smoke model.
#   2. llama.cpp (node-llama-cpp) on the converted text GGUF against rawflow (--llama-order) on a
#      text prompt: the bound of tests/parity/test_logprob_parity.sh for F32 (0.02, argmax 100 %).
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}"
work=${RAWFLOW_TEST_WORK:-/tmp}/train-parity
rm -rf "$work" && mkdir -p "$work"
py=/usr/bin/python3
model=${RAWFLOW_DEMO_MODEL:-$RAWFLOW_SOURCE_DIR/models/gemma4-rawflow-demo}
[ -f "$model/model.safetensors" ] || { echo "FAIL: no trained model at $model"; exit 1; }
"$RAWFLOW_BIN" model convert "$model" --out "$work/demo.gguf" >/dev/null

# Media: a clip from the training voices as a float WAV (lossless), a scene as PNG.
"$py" - "$RAWFLOW_SOURCE_DIR/train" "$work" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[1])
import testsets
work = sys.argv[2]
x, ref = testsets.speech_set("train_voices", 1)[0]
data = x.astype("<f4").tobytes()
hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 3, 1, 16000, 64000, 4, 32)
open(f"{work}/clip.wav", "wb").write(hdr + b"data" + struct.pack("<I", len(data)) + data)
x.astype("<f4").tofile(f"{work}/clip.f32")
img, _, cap = testsets.scene_item(3)
img.save(f"{work}/scene.png")
print(f"clip: {ref!r}; scene {img.width}x{img.height}: {cap!r}")
PY
# The pixels rawflow's embedder sees (its own resize to budget 70), for the reference to see too.
"$RAWFLOW_BIN" inspect --image "$work/scene.png" --budget 70 --resized-out "$work/scene.rgb" >"$work/resize.txt"
read -r w h < <(grep -oE '[0-9]+x[0-9]+' "$work/resize.txt" | tail -1 | tr x ' ')

compare() {  # reference rawflow what
  "$py" - "$@" <<'PY'
import sys
import numpy as np
ref, got, what = sys.argv[1:4]
a, b = np.fromfile(ref, "<f4"), np.fromfile(got, "<f4")
if a.size != b.size or a.size == 0:
    sys.exit(f"FAIL: {what}: reference {a.size} floats, rawflow {b.size}")
v = 931
a, b = a.reshape(-1, v).astype(np.float64), b.reshape(-1, v).astype(np.float64)
fin = np.isfinite(a)
if not (np.isfinite(b) == fin).all():
    sys.exit(f"FAIL: {what}: suppressed (-inf) entries differ")
d = np.abs(a[fin] - b[fin]).max()
agree = (a.argmax(1) == b.argmax(1)).mean() * 100
print(f"{what}: {a.shape[0]} positions, max |delta| {d:.2e}, argmax {agree:.1f} %")
if d > 1e-3 or agree < 100:
    sys.exit(f"FAIL: {what}: bound 1e-3 and argmax 100 %")
PY
}

for src in hf gguf; do
  if [ $src = hf ]; then m=(--model "$model"); else m=(--model "$work/demo.gguf" --mmproj "$work/mmproj-demo.gguf"); fi
  "$RAWFLOW_BIN" transcribe "${m[@]}" "$work/clip.wav" -n 0 --logprobs-out "$work/t.$src.f32" \
    --prompt-tokens-out "$work/t.$src.ids" 2>/dev/null
  "$RAWFLOW_BIN" describe "${m[@]}" "$work/scene.png" --budget 70 -p "Describe this image in one or two sentences." \
    -n 0 --logprobs-out "$work/d.$src.f32" --prompt-tokens-out "$work/d.$src.ids" 2>/dev/null
done
cmp "$work/t.hf.ids" "$work/t.gguf.ids" && cmp "$work/d.hf.ids" "$work/d.gguf.ids"
"$py" "$RAWFLOW_SOURCE_DIR/train/forward.py" --model "$model" --tokens "$work/t.hf.ids" --audio "$work/clip.f32" --out "$work/t.ref.f32"
"$py" "$RAWFLOW_SOURCE_DIR/train/forward.py" --model "$model" --tokens "$work/d.hf.ids" --image "$work/scene.rgb" \
  --width "$w" --height "$h" --out "$work/d.ref.f32"
for src in hf gguf; do
  compare "$work/t.ref.f32" "$work/t.$src.f32" "transcribe, audio, $src"
  compare "$work/d.ref.f32" "$work/d.$src.f32" "describe, image ${w}x${h}, $src"
done

echo "== llama.cpp on the converted text GGUF"
tokens=$("$RAWFLOW_BIN" tokenize --model "$work/demo.gguf" --quiet \
  --text "<bos><|turn>user
Transcribe this audio.<turn|>
<|turn>model
<|channel>thought
<channel|>three red circles on the left and a small blue square near the door<turn|>" | tr -s ' ' ',')
n=$(echo "$tokens" | tr ',' '\n' | wc -l)
"$RAWFLOW_BIN" generate --model "$work/demo.gguf" --tokens "$tokens" -n 0 --llama-order \
  --logprobs-out "$work/text.rawflow.f32" 2>/dev/null
node "$RAWFLOW_SOURCE_DIR/tests/parity/llama_logprobs.mjs" "$work/demo.gguf" "$tokens" "$work/text.llama.f32" \
  --ctx $((n + 16)) 2>"$work/llama.log"
"$py" "$RAWFLOW_SOURCE_DIR/tests/parity/compare_logprobs.py" "$work/text.llama.f32" "$work/text.rawflow.f32" \
  --vocab 931 --max-abs 0.02 --min-argmax 100
echo "three implementations agree"
