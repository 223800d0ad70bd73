#!/usr/bin/env bash
# Live transcription latency with and without streaming prefill (issue #14, docs/performance.md):
# `rawflow run` on N RTSP streams from the test server (tests/rtsp/rtsp_server.py, AAC + a small
# H.264 picture, played in real time), one transcribe task with W-second windows, on a
# synthesized 12B-shaped model cut to --layers L (q4_0, the released QAT's type). Each
# configuration runs for --duration s; the finals' latency_ms (the window's last media reaching
# the graph → its final on the wire) are summarised per configuration, with the finals' decode
# time and `rawflow bench`'s time for the closing chunk's prefill (the last piece and the prompt's
# closing text) at the window's depth, the two parts streaming prefill leaves after a window's end.
#
#   RAWFLOW_BIN=build/rawflow bench/live_latency.sh [--layers 6] [--streams "1 4"] [--window 10]
#       [--piece 1] [--tokens 16] [--duration 75] [--work DIR]
#
# Prints one table row per (streams, streaming prefill) and writes DIR/<config>.jsonl.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
layers=6 streams_list="1 4" window=10 piece=1 tokens=16 duration=75
work=${TMPDIR:-/tmp}/rawflow-live-latency
while [ $# -gt 0 ]; do
  case $1 in
    --layers) layers=$2; shift 2 ;;
    --streams) streams_list=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --piece) piece=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "live_latency.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
[ -x "$rawflow" ] || { echo "live_latency.sh: no rawflow binary at $rawflow (set RAWFLOW_BIN)" >&2; exit 2; }
mkdir -p "$work"

echo "# rawflow live latency: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# command: RAWFLOW_BIN=$rawflow $0 --layers $layers --streams \"$streams_list\" --window $window --piece $piece --tokens $tokens --duration $duration"
echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

source "$here/bench/live_feeds.sh"
synth_model "$layers"

# The two parts left after a window's end with streaming prefill, measured alone: the closing
# chunk prefilled at the window's depth, and the decode. The closing chunk is the last piece's
# audio tokens, the transcribe prompt's 14 tokens after the audio (audio end marker, instruction,
# end of turn, the model turn's start) and the token held back from the piece before: 40 tokens
# with 1 s pieces, as a trace of the scheduler's forwards on a live feed showed (2026-12-08).
window_tokens=$(( window * 25 ))
piece_tokens=$($py -c "print(round($piece * 25) + 15)")
"$rawflow" bench -m "$model" -p "$piece_tokens" -b "$piece_tokens" -n "$tokens" \
  -d "$window_tokens" -r 3 >"$work/bench.txt" 2>&1
echo "# rawflow bench -p $piece_tokens -b $piece_tokens -n $tokens -d $window_tokens -r 3 (the closing chunk at the window's depth; the decode):"
sed 's/^/#   /' "$work/bench.txt"

run_config() {  # streams streaming_prefill_s
  local n=$1 s=$2 name="n$1-s$2"
  start_feeds "$name" "$n"
  {
    echo "version: 1"
    echo "streams:"
    for i in $(seq "$n"); do echo "  - {name: cam$i, url: \"${feed_urls[$((i - 1))]}\"}"; done
    echo "tasks:"
    echo "  - {name: speech, kind: transcribe, window_s: $window, max_new_tokens: $tokens, streaming_prefill_s: $s}"
    echo "engine: {model: $model, mmproj: $mmproj, max_batch: $((2 * n)), kv_cache_budget_mb: 2048}"
    echo "outputs: {jsonl: {path: $work/$name.jsonl}}"
  } >"$work/$name.yaml"
  rm -f "$work/$name.jsonl"
  "$rawflow" run "$work/$name.yaml" >/dev/null 2>"$work/$name.log" &
  local run=$!
  sleep "$duration"
  kill -INT "$run" 2>/dev/null || true
  wait "$run" || true
  stop_feeds
  $py - "$work/$name.jsonl" "$n" "$s" "$window" <<'PY'
import json, statistics, sys
path, n, s, window = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ev = [json.loads(l) for l in open(path)]
# Whole windows only: the run's stop closes the last ones short.
fin = [e for e in ev if e["kind"] == "final" and e["media_end"] - e["media_start"] >= window - 1e-6]
errors = sum(e["kind"] == "error" for e in ev)
if not fin:
    print("| %d | %s | no whole-window finals (%d errors) |" % (n, "on" if s else "off", errors)); sys.exit(0)
lat = sorted(e["latency_ms"] for e in fin)
q = lambda p: lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))]
dec = statistics.median(e["timing_ms"]["decode"] for e in fin)
# Streamed windows: closing piece reaching the engine → prompt prefilled (a forward in flight, then
# the closing prefill), and the rest of latency_ms beside it and the decode (hand-off and sinks).
closes = [e["timing_ms"]["close"] for e in fin if "close" in e["timing_ms"]]
close = "%.0f" % statistics.median(closes) if closes else "-"
rest = "%.0f" % statistics.median(e["latency_ms"] - e["timing_ms"]["close"] - e["timing_ms"]["decode"]
                                  for e in fin if "close" in e["timing_ms"]) if closes else "-"
print("| %d | %s | %d | %d | %.0f | %.0f | %.0f | %.0f | %s | %s |" %
      (n, "%g s" % s if s else "off", len(fin), errors, q(0.5), q(0.95), max(lat), dec, close, rest))
PY
}

echo
echo "| streams | streaming prefill | whole-window finals | errors | latency p50 ms | p95 ms | max ms | decode ms (median) | close ms (median) | rest ms (median) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in $streams_list; do
  run_config "$n" 0
  run_config "$n" "$piece"
done
