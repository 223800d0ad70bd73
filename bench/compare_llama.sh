#!/usr/bin/env bash
# rawflow vs llama.cpp on the same GGUF files, same threads, same run:
#   bench/compare_llama.sh [-t THREADS] [-p 512] [-n 64] [-r REPS] MODEL.gguf...
# For each model: rawflow bench (default kernels), llama-bench built natively from the source
# node-llama-cpp ships (bench/llama_native.sh), and node-llama-cpp's prebuilt library. Prints each
# tool's own lines, then a summary with the ratios. Needs an otherwise idle machine: both engines
# spin their thread pools, and a busy core wrecks either one.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
threads=2 p=512 n=64 reps=3
while getopts "t:p:n:r:" o; do
  case $o in t) threads=$OPTARG ;; p) p=$OPTARG ;; n) n=$OPTARG ;; r) reps=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-t T] [-p P] [-n N] [-r R] MODEL.gguf..." >&2; exit 2; }
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
llama_bench=$("$here/bench/llama_native.sh")
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, threads $threads"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
summary=()
for model in "$@"; do
  echo "## $(basename "$model")"
  rf=$("$rawflow" bench --model "$model" -p "$p" -n "$n" -t "$threads" -r "$reps")
  echo "$rf"
  # llama-bench: its defaults (F16 KV cache, flash attention auto) are what its users run.
  lb=$("$llama_bench" -m "$model" -p "$p" -n "$n" -t "$threads" -r "$reps" -o csv 2>/dev/null)
  lb_pp=$(echo "$lb" | /usr/bin/python3 -c "
import csv,sys
rows=list(csv.DictReader(sys.stdin))
for r in rows:
    kind='pp' if int(r['n_prompt'])>0 else 'tg'
    print(kind, r['avg_ts'], r['stddev_ts'])")
  echo "llama-bench native:"; echo "$lb_pp" | sed 's/^/  /'
  npm=$(node "$here/bench/llama_bench_npm.mjs" "$model" -p "$p" -n "$n" --threads "$threads" --reps "$reps" 2>/dev/null | grep -E '^(pp|tg)')
  echo "node-llama-cpp:"; echo "$npm" | sed 's/^/  /'
  r_pp=$(echo "$rf" | awk '/^pp/{print $2}'); r_tg=$(echo "$rf" | awk '/^tg/{print $2}')
  rss=$(echo "$rf" | awk '/peak RSS/{print $3" GiB, "substr($5, 2)"× file"}')
  l_pp=$(echo "$lb_pp" | awk '$1=="pp"{print $2}'); l_tg=$(echo "$lb_pp" | awk '$1=="tg"{print $2}')
  n_pp=$(echo "$npm" | awk '/^pp/{print $2}'); n_tg=$(echo "$npm" | awk '/^tg/{print $2}')
  summary+=("$(printf '| %s | %.1f | %.1f | %.1f | %s× | %.1f | %.1f | %.1f | %s× | %s |' "$(basename "$model")" \
    "$r_pp" "$l_pp" "$n_pp" "$(ratio "$r_pp" "$l_pp")" "$r_tg" "$l_tg" "$n_tg" "$(ratio "$r_tg" "$l_tg")" "$rss")")
done
echo
echo "| model | rawflow pp$p | llama.cpp native pp$p | node-llama-cpp pp$p | pp ratio vs native | rawflow tg$n | native tg$n | npm tg$n | tg ratio vs native | rawflow peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
