#!/usr/bin/env bash
# rawflow against what a user would build instead (issue #14, docs/performance.md): llama.cpp's
# llama-server with the mmproj, fed 10 s WAV clips that ffmpeg cuts from each feed, over its
# OpenAI-compatible API — on the same live RTSP feeds (tests/rtsp/rtsp_server.py, AAC, played in
# real time), the same synthesized 12B-shaped model and mmproj (--layers L, q4_0) and the same
# cores. llama-server is built natively from the llama.cpp source node-llama-cpp ships
# (bench/llama_native.sh --target llama-server). For each stream count: media seconds
# transcribed per wall second, window end → result latency p50/p95, CPU seconds per media
# second and whether each system kept up (bench/live_vs_llama_server.py says how each is taken).
#
#   RAWFLOW_BIN=build/rawflow bench/live_vs_llama_server.sh [--layers 6] [--streams "1 2 4"]
#       [--window 10] [--piece 1] [--tokens 16] [--duration 75] [--work DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
layers=6 streams_list="1 2 4" window=10 piece=1 tokens=16 duration=75
work=${TMPDIR:-/tmp}/rawflow-vs-llama-server
while [ $# -gt 0 ]; do
  case $1 in
    --layers) layers=$2; shift 2 ;;
    --streams) streams_list=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --piece) piece=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "live_vs_llama_server.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
[ -x "$rawflow" ] || { echo "live_vs_llama_server.sh: no rawflow binary at $rawflow" >&2; exit 2; }
mkdir -p "$work"
llama_server=$("$here/bench/llama_native.sh" --target llama-server)

echo "# rawflow vs llama-server, live: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# command: RAWFLOW_BIN=$rawflow $0 --layers $layers --streams \"$streams_list\" --window $window --piece $piece --tokens $tokens --duration $duration"
echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# llama-server: $llama_server ($(git -C "$(dirname "$llama_server")/../../src" log -1 --format='%h %cs' 2>/dev/null || echo '?'))"

source "$here/bench/live_feeds.sh"
synth_model "$layers"

# Fresh feeds for each run.
run_one() {  # system streams
  start_feeds "$1-$2" "$2"
  $py "$here/bench/live_vs_llama_server.py" "$1" --urls "$(IFS=,; echo "${feed_urls[*]}")" \
    --rawflow "$rawflow" --llama-server "$llama_server" --model "$model" --mmproj "$mmproj" \
    --window "$window" --piece "$piece" --tokens "$tokens" --duration "$duration" --work "$work" \
    | tee -a "$work/results.jsonl"
  stop_feeds
}

rm -f "$work/results.jsonl"
for n in $streams_list; do
  run_one rawflow "$n" >/dev/null
  run_one llama-server "$n" >/dev/null
done
echo
$py - "$work/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| streams | system | windows answered / expected | dropped or failed | media s per wall s | latency p50 ms | p95 ms | CPU s per media s | kept up |")
print("|---|---|---|---|---|---|---|---|---|")
f = lambda x, d=0: "–" if x is None else ("%.*f" % (d, x))
for r in rows:
    print("| %d | %s | %d / %d | %d | %s | %s | %s | %s | %s |" % (
        r["streams"], r["system"], r["windows"], r["expected"], r["dropped"],
        f(r["media_s_per_wall_s"], 2), f(r["p50_ms"]), f(r["p95_ms"]), f(r["cpu_s_per_media_s"], 2),
        "yes" if r["kept_up"] else "no"))
PY
