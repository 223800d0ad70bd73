#!/usr/bin/env bash
# The fuzz targets' seed corpora, made by rawflow's own writers: `rawflow model synth` (GGUF text
# models in five dtypes, the mmproj, a Hugging Face directory with its tokenizer.json), the
# repository's configs (with and without --set overrides), text of several scripts, result events.
#   fuzz/make_seeds.sh OUT_DIR        (RAWFLOW_BIN: the rawflow binary; default build/rawflow)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: fuzz/make_seeds.sh OUT_DIR}
bin=${RAWFLOW_BIN:-$here/build/rawflow}
[ -x "$bin" ] || { echo "make_seeds: no rawflow binary at $bin (set RAWFLOW_BIN)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in $(grep -E '^[a-z_]+$' "$here/fuzz/targets.txt"); do
  mkdir -p "$out/$t"
done
synth() { "$bin" model synth --preset micro "$@" >/dev/null; }

# Model files. The micro preset is every tensor and key of a release at 32 wide (165 kB).
synth --dtype f32 --mmproj --mmproj-dtype f16 --out "$tmp/f32.gguf"
synth --dtype f16 --out "$out/gguf_model/f16.gguf"
synth --dtype bf16 --out "$out/gguf_model/bf16.gguf"
synth --dtype q8_0 --out "$out/gguf_model/q8_0.gguf"
synth --dtype q4_0 --embd-dtype q8_0 --out "$out/gguf_model/q4_0.gguf"
cp "$tmp/f32.gguf" "$out/gguf_model/f32.gguf"
cp "$tmp/mmproj-f32.gguf" "$out/mmproj/f16.gguf"
synth --dtype bf16 --mmproj --mmproj-dtype bf16 --mmproj-out "$out/mmproj/bf16.gguf" \
  --out "$tmp/bf16.gguf"
# hf_checkpoint's layout: u32 length of config.json, config.json, model.safetensors.
pack_hf() {
  python3 -c 'import struct,sys; c=open(sys.argv[1],"rb").read(); s=open(sys.argv[2],"rb").read(); sys.stdout.buffer.write(struct.pack("<I",len(c))+c+s)' \
    "$1/config.json" "$1/model.safetensors"
}
synth --format safetensors --dtype bf16 --out "$tmp/hf"
pack_hf "$tmp/hf" >"$out/hf_checkpoint/bf16"
cp "$tmp/hf/tokenizer.json" "$out/tokenizer_json/micro.json"
synth --format safetensors --dtype f32 --mmproj --out "$tmp/hf-mm"
pack_hf "$tmp/hf-mm" >"$out/hf_checkpoint/f32-mmproj"

# Configs: layout [overrides, one per line] NUL [YAML].
for f in "$here"/configs/*.yaml; do
  cp "$f" "$out/config/$(basename "$f")"
  { printf 'engine.threads=4\nstreams.0.url=rtsp://cam:${CAM_PASSWORD}@10.0.0.7/live\ntasks.0.window_s=20\0'
    cat "$f"; } >"$out/config/set-$(basename "$f")"
done

# Text: prompts as the commands send them, and other scripts.
printf '<bos><|turn>user\nTranscribe this audio.<|audio><turn|>\n<|turn>model\n' >"$out/tokenizer_text/prompt"
printf 'The quick brown fox  jumps\n\n\tover 12 lazy dogs.' >"$out/tokenizer_text/english"
printf 'Ünïcödé façade — 東京 → 🐍 \xe2\x96\x81 end' >"$out/tokenizer_text/unicode"
head -c 4096 "$here/README.md" >"$out/tokenizer_text/readme"

# Result events: kind byte, request id, doubles, then NUL-separated strings (fuzz/target_result_event.cpp).
printf '\001\007\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\001cam-1\000transcribe\000five green squares\000demo\000\000\000' \
  >"$out/result_event/final"
printf '\004\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000cam-1\000\000\000\000\000\000{"requests":3,"latency":{"p50":0.2}}' \
  >"$out/result_event/stats"
echo "seeds in $out: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1)"
