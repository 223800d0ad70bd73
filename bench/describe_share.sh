#!/usr/bin/env bash
# The embedders' share of one `rawflow describe` request at the 12B's shapes and depth:
#   bench/describe_share.sh [-l LAYERS] [-n N_PREDICT] [-b BUDGET] [-t THREADS] [-r REPS] [-k] [WORKDIR]
# Synthesizes a Q4_0 text model with the 12B's layer shapes, vocabulary and (by default) all 48
# layers (`model synth --preset 12b-2l --layers 48`, ~7 GB; token_embd Q6_K as in Google's QAT
# file) and its 12B-shaped mmproj (D = 3840, position table and projections BF16), then runs
# `rawflow describe` on a 1024x1024 picture REPS times after one warm-up run, and prints, per run
# and as medians, the image's decode, resize + tiles and embedder times (describe's image line),
# the prefill and decode times (its prompt/generated line) and the embedders' share of the request
# (everything after the model is loaded). The files are deleted at the end unless -k; a later run
# with -k reuses them instead of synthesizing again (~7 GB, ~7 min on 2 busy cores).
# Defaults: 48 layers, -n 16, budget 280 (1024x1024 -> 768x768, 256 soft tokens), 2 threads,
# 3 repetitions, WORKDIR /tmp/describe-share. RAWFLOW_BIN: the rawflow binary (default build/rawflow).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
layers=48 n=16 budget=280 threads=2 reps=3 keep=0
while getopts "l:n:b:t:r:k" o; do
  case $o in
    l) layers=$OPTARG ;; n) n=$OPTARG ;; b) budget=$OPTARG ;; t) threads=$OPTARG ;;
    r) reps=$OPTARG ;; k) keep=1 ;; *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
work=${1:-/tmp/describe-share}
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
[ -x "$rawflow" ] || { echo "describe_share: no rawflow binary at $rawflow (set RAWFLOW_BIN)" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "describe_share: needs ffmpeg (apt-get install ffmpeg) for the test picture" >&2; exit 1; }

mkdir -p "$work"
model=$work/12b-${layers}l-q4_0.gguf
mmproj=$work/mmproj-12b-q4_0.gguf
image=$work/picture-1024.png
cleanup() { [ "$keep" = 1 ] || rm -f "$model" "$mmproj" "$image"; }
trap cleanup EXIT

# Q4_0 layers: sliding 224.0 M weights, full 241.8 M, at 18 bytes per 32; plus the Q6_K
# token_embd (826 MB) and the mmproj (~175 MB). Refuse early rather than fill the disk.
need_mb=$(( (layers * 233 * 18 / 32) + 826 + 175 + 512 ))
[ "$keep" = 1 ] && [ -s "$model" ] && need_mb=0
free_mb=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
if [ "$free_mb" -lt "$need_mb" ]; then
  echo "describe_share: $work has $free_mb MB free, the files need ~$need_mb MB" >&2
  exit 1
fi

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, threads $threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# rawflow $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), $layers layers, budget $budget, -n $n"
if [ "$keep" = 1 ] && [ -s "$model" ] && [ -s "$mmproj" ]; then
  echo "# reusing the files kept by an earlier -k run"
else
  t0=$(date +%s)
  "$rawflow" model synth --preset 12b-2l --layers "$layers" --dtype q4_0 --seed 1 \
    --mmproj --mmproj-out "$mmproj" --mmproj-dtype bf16 --out "$model" | sed 's/^/# synth: /'
  echo "# synth took $(( $(date +%s) - t0 )) s"
fi
echo "# model $(du -m "$model" | cut -f1) MB, mmproj $(du -m "$mmproj" | cut -f1) MB"
# A picture with detail everywhere (the content does not change the work: every tile costs the same).
ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=1024x1024 -frames:v 1 "$image"

run_once() {  # prints: decode_ms resize_ms embed_ms prefill_ms gen_ms prompt_tokens generated
  local err
  err=$("$rawflow" describe --model "$model" --mmproj "$mmproj" --budget "$budget" -n "$n" \
    --greedy -t "$threads" "$image" 2>&1 >/dev/null)
  echo "$err" | /usr/bin/python3 -c '
import re, sys
text = sys.stdin.read()
img = re.search(r"decode ([\d.]+) ms, resize \+ tiles ([\d.]+) ms, embedders ([\d.]+) ms", text)
gen = re.search(r"prompt: (\d+) tokens in ([\d.]+) s .*generated: (\d+) tokens in ([\d.]+) s", text)
if not img or not gen:
    sys.exit("describe_share: unexpected describe output:\n" + text)
print(img[1], img[2], img[3], float(gen[2]) * 1e3, float(gen[4]) * 1e3, gen[1], gen[3])'
}

echo "# warm-up (maps the model, fills the page cache): $(run_once)"
printf '| run | image decode ms | resize + tiles ms | embedders ms | prefill ms (tokens) | decode ms (tokens) | embedders share |\n|---|---|---|---|---|---|---|\n'
rows=()
for r in $(seq 1 "$reps"); do
  row=$(run_once)
  rows+=("$row")
  echo "$row" | awk -v r="$r" '{ total = $1 + $2 + $3 + $4 + $5
    printf "| %d | %.1f | %.1f | %.1f | %.0f (%d) | %.0f (%d) | %.2f %% |\n", r, $1, $2, $3, $4, $6, $5, $7, 100 * $3 / total }'
done
printf '%s\n' "${rows[@]}" | /usr/bin/python3 -c '
import statistics, sys
runs = [[float(v) for v in line.split()] for line in sys.stdin if line.strip()]
med = [statistics.median(col) for col in zip(*runs)]
total = sum(med[:5])
shares = [100 * r[2] / sum(r[:5]) for r in runs]
print(f"| median | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {med[3]:.0f} ({med[5]:.0f}) | {med[4]:.0f} ({med[6]:.0f}) "
      f"| {statistics.median(shares):.2f} % |")
print(f"\nembedders: {statistics.median(shares):.2f} % of the request (median of {len(runs)}; range "
      f"{min(shares):.2f}-{max(shares):.2f} %); prefill {100 * med[3] / total:.1f} %, decode {100 * med[4] / total:.1f} %, "
      f"image decode + resize {100 * (med[0] + med[1]) / total:.1f} %")'
