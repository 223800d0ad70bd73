#!/usr/bin/env bash
# Makes the demo's inputs in DIR (default build/demo):
#   demo.mkv   30 s, H.264 640x360 + 16 kHz PCM: three 10 s scenes of coloured shapes (drawn by
#              train/scenes.py), and in each a sentence of the demo model's vocabulary spoken by a
#              festival voice the model never trained on (kal_diphone, ked_diphone,
#              cmu_us_slt_arctic_hts), 1 s into its 10 s window.
#   demo.txt   what was said and shown, window by window (to check the output against)
#   tiny.gguf + tiny-mmproj.gguf   a random-weight model, for tests that need one
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build/demo}
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
mkdir -p "$dir"
if [ ! -f "$dir/demo.mkv" ]; then
  /usr/bin/python3 - "$here/train" "$dir" <<'PY'
import os, random, sys, tempfile
sys.path.insert(0, sys.argv[1])
import numpy as np
import scenes, speech, testsets
out = sys.argv[2]
said = [("kal_diphone", "a large red circle on the left"),
        ("ked_diphone", "the blue car is parked near the door"),
        ("cmu_us_slt_arctic_hts", "the person enters the door on the right")]
audio = np.zeros(30 * 16000, np.float32)
lines = []
for k, (voice, text) in enumerate(said):
    with tempfile.TemporaryDirectory() as tmp:
        x = speech.test_utterances(voice, [text.split()], tmp)[0].astype(np.float32) / 32768.0
    start = (10 * k + 1) * 16000
    audio[start:start + len(x)] = x[: 9 * 16000]
    img, shapes = scenes.render(random.Random(2026 + k), 640, 360)
    img.save(os.path.join(out, f"scene{k}.png"))
    lines.append(f"{10 * k:2d}-{10 * k + 10:2d} s  said ({voice}): {text}\n"
                 f"         shown: {scenes.caption(shapes)}")
testsets.write_wav(os.path.join(out, "speech.wav"), audio)
open(os.path.join(out, "demo.txt"), "w").write("\n".join(lines) + "\n")
PY
  # fps=25 makes every frame (a still per 10 s would be 3 frames in a variable-rate MKV).
  ffmpeg -loglevel error -y -framerate 1/10 -i "$dir/scene%d.png" -i "$dir/speech.wav" -vf fps=25 \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a pcm_s16le -t 30 "$dir/demo.mkv"
fi
[ -f "$dir/tiny.gguf" ] ||
  "$rawflow" model synth --preset tiny --dtype q8_0 --seed 7 --mmproj \
    --mmproj-out "$dir/tiny-mmproj.gguf" --out "$dir/tiny.gguf" >/dev/null
