#!/usr/bin/env bash
# Makes the demo's inputs in DIR (default build/demo): a 30 s clip with espeak-ng speech over an
# ffmpeg test pattern (demo.mkv, H.264 + PCM), and a random-weight tiny model with its projector.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build/demo}
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
mkdir -p "$dir"
if [ ! -f "$dir/demo.mkv" ]; then
  espeak-ng -w "$dir/speech.wav" -s 150 \
    "This is the rawflow demo. A camera watches a test pattern while someone talks about it. \
Every ten seconds the pipeline transcribes what was said and describes what was seen, \
and publishes the results with their media times. The model in this demo has random weights, \
so its answers are gibberish. Point the configuration at the released Gemma four model for real ones."
  ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25:duration=30 \
    -i "$dir/speech.wav" -filter_complex "[1:a]aresample=16000,apad=whole_dur=30[a]" \
    -map 0:v -map "[a]" -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a pcm_s16le \
    -t 30 "$dir/demo.mkv"
fi
[ -f "$dir/tiny.gguf" ] ||
  "$rawflow" model synth --preset tiny --dtype q8_0 --seed 7 --mmproj \
    --mmproj-out "$dir/tiny-mmproj.gguf" --out "$dir/tiny.gguf" >/dev/null
