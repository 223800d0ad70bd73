#!/usr/bin/env bash
# `rawflow run` wall time of two builds side by side (issue #12: the graph redesign must not be
# slower): the files run (configs/demo.yaml on the 30 s demo.mkv: one stream, transcribe +
# describe) and a four-stream run (four file streams of demo.mkv, both tasks, max_batch 4), each
# REPS times, the builds alternating within each repetition so that machine noise hits both.
# Prints per-run wall seconds, the median of each, and B's busy-time line (projection, forwards,
# both at once).
#
#   bench/pipeline_graph.sh OLD_RAWFLOW NEW_RAWFLOW [REPS=5]
#
# Model: $MODEL/$MMPROJ, default the random-weight tiny pair make_demo_media.sh writes (the
# graph's own costs are largest relative to a small engine).
set -euo pipefail
a=${1:?old rawflow binary}
b=${2:?new rawflow binary}
reps=${3:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-/tmp/rawflow-bench-graph}
mkdir -p "$work"
RAWFLOW_BIN=$b "$here/scripts/make_demo_media.sh" "$work" >/dev/null
model=${MODEL:-$work/tiny.gguf}
mmproj=${MMPROJ:-$work/tiny-mmproj.gguf}
cat >"$work/four.yaml" <<YAML
streams:
  - {name: s0, url: $work/demo.mkv}
  - {name: s1, url: $work/demo.mkv}
  - {name: s2, url: $work/demo.mkv}
  - {name: s3, url: $work/demo.mkv}
tasks:
  - {kind: transcribe, window_s: 5}
  - {kind: describe, interval_s: 5, frames_per_request: 1, image_budget: 70}
engine: {model: $model, mmproj: $mmproj, max_batch: 4, threads: 2}
outputs: {jsonl: {path: $work/four.jsonl}}
YAML

run() {  # binary name config [extra --set...] -> wall seconds; stderr kept in $work/name.log
  local bin=$1 name=$2 cfg=$3
  shift 3
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" run "$cfg" "$@" >/dev/null 2>"$work/$name.log"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

demo_args=(--set "streams.0.url=$work/demo.mkv" --set "engine.model=$model"
           --set "engine.mmproj=$mmproj" --set "outputs.jsonl.path=$work/demo.jsonl"
           --set "engine.threads=2")
: >"$work/times"
for r in $(seq "$reps"); do
  for side in A B; do
    bin=$a; [ $side = B ] && bin=$b
    t=$(run "$bin" "files-$side" "$here/configs/demo.yaml" "${demo_args[@]}")
    echo "files $side $t" | tee -a "$work/times"
    t=$(run "$bin" "four-$side" "$work/four.yaml")
    echo "four $side $t" | tee -a "$work/times"
  done
done
for run_name in files four; do
  for side in A B; do
    m=$(awk -v r=$run_name -v s=$side '$1==r && $2==s {print $3}' "$work/times" | median)
    echo "median $run_name $side ${m}s"
  done
  grep -h "busy" "$work/$run_name-B.log" | sed "s/^/$run_name B: /"
  tail -1 "$work/$run_name-B.log" | sed "s/^/$run_name B: /"
done
