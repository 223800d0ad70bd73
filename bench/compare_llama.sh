#!/usr/bin/env bash
# rawflow vs llama.cpp on the same GGUF files, same threads, same run:
#   bench/compare_llama.sh [-t THREADS] [-p 512] [-n 64] [-r REPS] [-d DEPTH] MODEL.gguf...
# For each model: rawflow bench (default kernels), llama-bench built natively from the source
# node-llama-cpp ships (bench/llama_native.sh), and node-llama-cpp's prebuilt library. Prints each
# tool's own lines, then a summary with the ratios. Needs an otherwise idle machine: both engines
# spin their thread pools, and a busy core wrecks either one.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
threads=2 p=512 n=64 reps=3 depth=0
while getopts "t:p:n:r:d:" o; do
  case $o in
    t) threads=$OPTARG ;; p) p=$OPTARG ;; n) n=$OPTARG ;; r) reps=$OPTARG ;; d) depth=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-t T] [-p P] [-n N] [-r R] [-d DEPTH] MODEL.gguf..." >&2; exit 2; }
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
llama_bench=$("$here/bench/llama_native.sh")
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, threads $threads"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# rawflow bench's figure for test kind $1 (pp/tg): the number before "±" ("pp512  341.2 ± 3.1
# t/s", "tg64 @ d2048  9.1 ± 0.2 t/s").
value() { awk -v k="$1" '$0 ~ "^"k { for (i = 2; i <= NF; i++) if ($i == "±") { print $(i - 1); exit } }'; }
summary=()
for model in "$@"; do
  echo "## $(basename "$model")"
  rf=$("$rawflow" bench --model "$model" -p "$p" -n "$n" -t "$threads" -r "$reps" -d "$depth")
  echo "$rf"
  # llama-bench: its defaults (F16 KV cache, flash attention auto) are what its users run.
  lb=$("$llama_bench" -m "$model" -p "$p" -n "$n" -t "$threads" -r "$reps" -d "$depth" -o csv 2>/dev/null)
  lb_pp=$(echo "$lb" | /usr/bin/python3 -c "
import csv,sys
rows=list(csv.DictReader(sys.stdin))
for r in rows:
    kind='pp' if int(r['n_prompt'])>0 else 'tg'
    print(kind, r['avg_ts'], r['stddev_ts'])")
  echo "llama-bench native:"; echo "$lb_pp" | sed 's/^/  /'
  # The npm script has no depth option: at a depth it is skipped (its columns read 0).
  npm=""
  [ "$depth" -gt 0 ] ||
    npm=$(node "$here/bench/llama_bench_npm.mjs" "$model" -p "$p" -n "$n" --threads "$threads" --reps "$reps" 2>/dev/null | grep -E '^(pp|tg)')
  echo "node-llama-cpp:"; echo "$npm" | sed 's/^/  /'
  r_pp=$(echo "$rf" | value pp); r_tg=$(echo "$rf" | value tg)
  rss=$(echo "$rf" | awk '/peak RSS/{print $3" GiB, "substr($5, 2)"× file"}')
  l_pp=$(echo "$lb_pp" | awk '$1=="pp"{print $2}'); l_tg=$(echo "$lb_pp" | awk '$1=="tg"{print $2}')
  n_pp=$(echo "$npm" | awk '/^pp/{print $2}'); n_tg=$(echo "$npm" | awk '/^tg/{print $2}')
  summary+=("$(printf '| %s | %.1f | %.1f | %.1f | %s× | %.1f | %.1f | %.1f | %s× | %s |' "$(basename "$model")" \
    "$r_pp" "$l_pp" "$n_pp" "$(ratio "$r_pp" "$l_pp")" "$r_tg" "$l_tg" "$n_tg" "$(ratio "$r_tg" "$l_tg")" "$rss")")
done
echo
at=""; [ "$depth" -gt 0 ] && at=" @ d$depth"
echo "| model | rawflow pp$p$at | llama.cpp native pp$p$at | node-llama-cpp pp$p$at | pp ratio vs native | rawflow tg$n$at | native tg$n$at | npm tg$n$at | tg ratio vs native | rawflow peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
