#!/usr/bin/env bash
# `rawflow batch` throughput (issue #13): media seconds processed per wall second on an archive of
# six inputs (the 30 s demo.mkv as MKV H.264 + PCM, MP4 MPEG-4 + AAC, MPEG-TS H.264 + AAC, and
# WAV, MP3, Opus audio only), with one input at a time (--max-active 1) and all at once
# (--max-active 6), against the equivalent `rawflow run` configuration (the same six files as
# streams, the same tasks and engine, results to JSONL). The three alternate within each
# repetition so machine noise hits all of them; medians are printed, with each one's mean
# sequences per forward (the engine's batching).
#
#   bench/batch_throughput.sh [REPS=3]
#
# Model: $MODEL/$MMPROJ, default the random-weight tiny pair make_demo_media.sh writes; the
# engine takes max_batch 6, threads 2.
set -euo pipefail
reps=${1:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAWFLOW_BIN:-$here/build/rawflow}
work=${WORK:-/tmp/rawflow-bench-batch}
mkdir -p "$work/archive"
RAWFLOW_BIN=$bin "$here/scripts/make_demo_media.sh" "$work" >/dev/null
model=${MODEL:-$work/tiny.gguf}
mmproj=${MMPROJ:-$work/tiny-mmproj.gguf}
a=$work/archive
ff() { ffmpeg -nostdin -loglevel error -y -i "$work/demo.mkv" "$@"; }
[ -f "$a/f.mka" ] || {
  ff -c:v libx264 -c:a pcm_s16le "$a/a.mkv"
  ff -c:v mpeg4 -c:a aac "$a/b.mp4"
  ff -c:v libx264 -c:a aac -f mpegts "$a/c.ts"
  ff -vn -c:a pcm_s16le "$a/d.wav"
  ff -vn -c:a libmp3lame "$a/e.mp3"
  ff -vn -c:a libopus "$a/f.mka"
}
tasks='  - {name: speech, kind: transcribe, window_s: 5, overlap_s: 1, max_new_tokens: 8}
  - {name: scene, kind: describe, interval_s: 5, frames_per_request: 1, image_budget: 70, max_new_tokens: 8}'
engine="engine: {model: $model, mmproj: $mmproj, max_batch: 6, threads: 2}"
cat >"$work/batch.yaml" <<YAML
tasks:
$tasks
$engine
outputs: {stdout: {enabled: false}}
YAML
{
  echo "streams:"
  for f in "$a"/*; do
    n=$(basename "$f"); n=${n//./_}
    case $f in *.wav | *.mp3 | *.mka) echo "  - {name: $n, url: $f, video: {enabled: false}}" ;;
      *) echo "  - {name: $n, url: $f}" ;; esac
  done
  echo "tasks:"
  echo "$tasks"
  echo "$engine"
  echo "outputs: {jsonl: {path: $work/run.jsonl}, stdout: {enabled: false}}"
} >"$work/run.yaml"
media_s=$(for f in "$a"/*; do ffprobe -v error -show_entries format=duration -of csv=p=0 "$f"; done |
  awk '{s += $1} END {printf "%.1f", s}')

timed() {  # name command... -> wall seconds; stderr kept in $work/name.log
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/$name.log" || { echo "$name failed:" >&2; tail -5 "$work/$name.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

: >"$work/times"
for r in $(seq "$reps"); do
  for n in 1 6; do
    t=$(timed "batch$n" "$bin" batch "$work/batch.yaml" "$a" --out "$work/out$n" --force --max-active $n)
    echo "batch-max-active-$n $t" | tee -a "$work/times"
  done
  t=$(timed run "$bin" run "$work/run.yaml")
  echo "run $t" | tee -a "$work/times"
done
echo "archive: 6 inputs, $media_s media seconds; $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p'))"
printf "%-22s %10s %14s %18s\n" what "wall s" "media-s/s" "seq per forward"
for what in batch-max-active-1 batch-max-active-6 run; do
  m=$(awk -v w=$what '$1==w {print $2}' "$work/times" | median)
  log=$work/${what/batch-max-active-/batch}.log
  seq=$(sed -n 's/.* \([0-9.]*\) sequences per forward (up to \([0-9]*\)).*/\1 (max \2)/p' "$log" | tail -1)
  printf "%-22s %10.2f %14.1f %18s\n" "$what" "$m" "$(echo "$media_s / $m" | bc -l)" "$seq"
done
