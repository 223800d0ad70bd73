#!/usr/bin/env bash
# rawflow against the plain numpy reference (tests/reference/gemma4_ref.py, written from the spec)
# on the multimodal path, F32 `tiny` with its embedders (HF names, one directory):
#   1. embedders: `rawflow inspect --mmproj --embeddings-out` vs `gemma4_ref.py embed-image /
#      embed-audio`, on a 480x336 image (10 x 7 tiles: a row/column mix-up cannot hide) and a
#      16300-sample clip (the last frame zero-padded). Bound: relative L2 per row <= 1e-5. Both
#      compute the same sums (6912- and 640-long), float32 against float64: measured 5e-7.
#      Both weight sources: the HF directory (HWC tiles) and the GGUF clip file (CHW tiles) that
#      `model synth` writes from the same seed — first checked to hold the same numbers, tensor by
#      tensor, under spec §7.4's permutations (tests/reference/gguf_mmproj.py), then its rows
#      compared with the same reference rows at the same bound.
#   2. a whole prompt (`rawflow ask ... -n 0 --logprobs-out --prompt-tokens-out`, image + audio +
#      text) vs `gemma4_ref.py forward` on the same ids, with HF's masks (image block bidirectional
#      on sliding layers only) and with --llama-bidirectional (all layers). tiny's window is 16 and
#      the image block is 70 tokens: the §2.8 edge case (block longer than the window) is in play.
#      Bounds as in test_reference_text.sh: max |delta log-prob| <= 0.02; argmax 100 % wherever the
#      reference's top-1 margin exceeds 0.04. The two mask modes must differ by far more than the
#      bound in the reference (else this comparison could not tell them apart).
# The image is sized so that the budget (70) keeps it as is (§3.1: f = 1): no resampler is involved,
# both sides see the same pixels.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}"
work=${RAWFLOW_TEST_WORK:-/tmp}/reference-multimodal
rm -rf "$work" && mkdir -p "$work"
py=/usr/bin/python3
ref="$RAWFLOW_SOURCE_DIR/tests/reference/gemma4_ref.py"
model=$work/tiny
"$RAWFLOW_BIN" model synth --preset tiny --format safetensors --dtype f32 --mmproj --seed 23 --out "$model" >/dev/null

# media: raw pixels / samples for the reference, PNG / float WAV for rawflow (lossless both ways)
"$py" - "$work" <<'PY'
import struct, sys
import numpy as np
from PIL import Image
work = sys.argv[1]
rng = np.random.default_rng(5)
h, w = 336, 480
y, x = np.mgrid[0:h, 0:w]
img = np.stack([x * 255 // w, y * 255 // h, rng.integers(0, 256, (h, w))], axis=-1).astype(np.uint8)
img.tofile(f"{work}/image.rgb")
Image.fromarray(img, "RGB").save(f"{work}/image.png")
t = np.arange(16300)
clip = (0.3 * np.sin(2 * np.pi * 440 * t / 16000) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t / 16000))).astype("<f4")
clip.tofile(f"{work}/audio.f32")
data = clip.tobytes()  # WAVE_FORMAT_IEEE_FLOAT, mono, 16 kHz, 32 bit
header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 3, 1, 16000, 64000, 4, 32)
open(f"{work}/audio.wav", "wb").write(header + b"data" + struct.pack("<I", len(data)) + data)
PY

compare_rows() {  # reference, rawflow, what
  "$py" - "$1" "$2" "$3" <<'PY'
import json, sys
import numpy as np
ref_path, rf_path, what = sys.argv[1:4]
a, b = np.fromfile(ref_path, "<f4").astype(np.float64), np.fromfile(rf_path, "<f4").astype(np.float64)
if a.size != b.size:
    print(f"FAIL: {what}: reference {a.size} floats, rawflow {b.size}")
    sys.exit(1)
a, b = a.reshape(-1, 256), b.reshape(-1, 256)
rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
print(f"{what}: {a.shape[0]} rows, max |delta| {np.abs(a - b).max():.3g}, max relative L2 per row {rel.max():.3g}")
if rel.max() > 1e-5:
    print(f"FAIL: {what}: row {int(rel.argmax())} differs by {rel.max():.3g} relative")
    sys.exit(1)
PY
}

echo "== embedders"
"$RAWFLOW_BIN" inspect --mmproj "$model" --image "$work/image.png" --budget 70 --embeddings-out "$work/image.rawflow.f32" >/dev/null
"$py" "$ref" embed-image --model "$model" --pixels "$work/image.rgb" --width 480 --height 336 --out "$work/image.ref.f32"
compare_rows "$work/image.ref.f32" "$work/image.rawflow.f32" "image 480x336 (70 tiles)"
"$RAWFLOW_BIN" inspect --mmproj "$model" --audio "$work/audio.wav" --embeddings-out "$work/audio.rawflow.f32" >/dev/null
"$py" "$ref" embed-audio --model "$model" --samples "$work/audio.f32" --out "$work/audio.ref.f32"
compare_rows "$work/audio.ref.f32" "$work/audio.rawflow.f32" "audio 16300 samples (26 frames)"

echo "== embedders from the GGUF clip file (CHW tiles), same seed"
gguf_mmproj=$work/mmproj-tiny.gguf
"$RAWFLOW_BIN" model synth --preset tiny --dtype f32 --mmproj --mmproj-out "$gguf_mmproj" --seed 23 \
  --out "$work/tiny.gguf" >/dev/null
"$py" "$RAWFLOW_SOURCE_DIR/tests/reference/gguf_mmproj.py" same-weights --gguf "$gguf_mmproj" --model "$model"
summary=$("$RAWFLOW_BIN" inspect --mmproj "$gguf_mmproj" --image "$work/image.png" --budget 70 \
  --embeddings-out "$work/image.gguf.f32")
echo "$summary" | head -1
if ! grep -q "CHW patches (GGUF)" <<<"$summary"; then
  echo "FAIL: rawflow did not cut CHW tiles for the GGUF mmproj"
  exit 1
fi
compare_rows "$work/image.ref.f32" "$work/image.gguf.f32" "GGUF mmproj: image 480x336 (70 tiles)"
"$RAWFLOW_BIN" inspect --mmproj "$gguf_mmproj" --audio "$work/audio.wav" --embeddings-out "$work/audio.gguf.f32" >/dev/null
compare_rows "$work/audio.ref.f32" "$work/audio.gguf.f32" "GGUF mmproj: audio 16300 samples (26 frames)"

for mode in hf llama; do
  flag=()
  [ "$mode" = llama ] && flag=(--llama-bidirectional)
  "$RAWFLOW_BIN" ask --model "$model" --image "$work/image.png" --audio "$work/audio.wav" --budget 70 \
    -p "What do you see and hear?" -n 0 --logprobs-out "$work/$mode.rawflow.f32" \
    --prompt-tokens-out "$work/$mode.tokens" "${flag[@]}" >/dev/null
  # the request from rawflow's own prompt ids; check their layout against §3.4 / §4.4 on the way
  "$py" - "$model" "$work" "$mode" <<'PY'
import json, sys
model, work, mode = sys.argv[1:4]
config = json.load(open(f"{model}/config.json"))
added = {t["content"]: t["id"] for t in json.load(open(f"{model}/tokenizer.json"))["added_tokens"]}
tokens = [int(t) for t in open(f"{work}/{mode}.tokens").read().replace(",", " ").split()]
image, audio = config["image_token_id"], config["audio_token_id"]
def run_of(tok):
    where = [i for i, t in enumerate(tokens) if t == tok]
    if not where or where != list(range(where[0], where[-1] + 1)):
        raise SystemExit(f"FAIL: prompt ids: placeholder {tok} does not form one run: {where[:5]}...")
    return where[0], where[-1]
(i0, i1), (a0, a1) = run_of(image), run_of(audio)
layout_ok = (i1 - i0 + 1 == 70 and a1 - a0 + 1 == 26
             and tokens[i0 - 1] == added["<|image>"] and tokens[i1 + 1] == added["<image|>"]
             and tokens[a0 - 1] == added["<|audio>"] and tokens[a1 + 1] == added["<audio|>"])
print(f"prompt ({mode}): {len(tokens)} ids, image soft tokens {i0}..{i1}, audio {a0}..{a1}")
if not layout_ok:
    raise SystemExit("FAIL: prompt ids: expected <|image> + 70 x <|image|> + <image|> and <|audio> + 26 x <|audio|> + <audio|>")
json.dump({"tokens": tokens, "image_token_id": image, "audio_token_id": audio, "video_token_id": config["video_token_id"],
           "images": [{"pixels": f"{work}/image.rgb", "width": 480, "height": 336}],
           "audios": [{"samples": f"{work}/audio.f32"}],
           "suppress_ids": [added["<image|>"], added["<audio|>"]],
           "bidirectional_full_layers": mode == "llama"}, open(f"{work}/{mode}.request.json", "w"))
PY
  "$py" "$ref" forward --model "$model" --request "$work/$mode.request.json" --logprobs-out "$work/$mode.ref.f32"
  echo "== whole prompt, image masks $mode: reference (a) vs rawflow (b)"
  "$py" "$RAWFLOW_SOURCE_DIR/tests/parity/compare_logprobs.py" "$work/$mode.ref.f32" "$work/$mode.rawflow.f32" \
    --vocab 512 --max-abs 0.02
  "$py" - "$work/$mode.ref.f32" "$work/$mode.rawflow.f32" <<'PY'
import sys
import numpy as np
a, b = (np.fromfile(p, "<f4").reshape(-1, 512) for p in sys.argv[1:3])
top2 = np.sort(a, axis=1)[:, -2:]
clear = (top2[:, 1] - top2[:, 0]) > 0.04
bad = np.flatnonzero((a.argmax(axis=1) != b.argmax(axis=1)) & clear)
print(f"argmax where the reference margin > 0.04: {int(clear.sum()) - bad.size}/{int(clear.sum())} agree")
if bad.size:
    print(f"FAIL: argmax differs at positions {bad[:10].tolist()}")
    sys.exit(1)
PY
done

"$py" - "$work/hf.ref.f32" "$work/llama.ref.f32" <<'PY'
import sys
import numpy as np
a, b = (np.fromfile(p, "<f4").reshape(-1, 512) for p in sys.argv[1:3])
finite = np.isfinite(a) & np.isfinite(b)
gap = np.abs(a[finite] - b[finite]).max()
print(f"reference, HF masks vs --llama-bidirectional: max |delta| {gap:.3g} (must exceed 10x the bound 0.02)")
if gap <= 0.2:
    print("FAIL: the two mask modes are too close for this test to tell them apart")
    sys.exit(1)
PY
echo "OK: rawflow's embedders and multimodal forward pass agree with the reference"
