#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan), makes the seed corpora and fuzzes each target
# for a while on its corpus; a target that finds a crash, hang, leak or broken property fails the
# run, and its input is left under WORK/findings/<target>/ (add it to fuzz/regressions/<target>/
# with the fix). CI runs `fuzz/run.sh --seconds 30`; docs/reliability.md records the long runs.
#
#   fuzz/run.sh [--seconds N] [--parallel P] [--work DIR] [TARGET...]
#
# RAWFLOW_BIN: a release rawflow for the seeds (default build/rawflow). The corpora live in
# WORK/corpus/<target> (default build-fuzz/work) and grow from run to run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=30 parallel=$(nproc) work=$here/build-fuzz/work
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -*) echo "fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
mapfile -t all < <(grep -E '^[a-z_]+$' "$here/fuzz/targets.txt")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
build=$here/build-fuzz

echo "== fuzz: build (clang, libFuzzer, ASan + UBSan)"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRAWFLOW_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
mkdir -p "$work"
ninja -C "$build" -j "$(nproc)" "${targets[@]/#/fuzz_}" >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; echo "fuzz/run.sh: the build failed ($work/build.log)" >&2; exit 1; }

echo "== fuzz: seeds"
rm -rf "$work/seeds"
"$here/fuzz/make_seeds.sh" "$work/seeds"

# One target: fuzz for $seconds on its corpus (the seeds and the committed findings are read too,
# not written), then one summary line: target, seconds, executions, corpus files, corpus bytes,
# result.
fuzz_one() {
  local t=$1 log=$work/logs/$1.log
  mkdir -p "$work/corpus/$t" "$work/findings/$t" "$work/logs"
  local inputs=("$work/corpus/$t" "$work/seeds/$t")
  [ -d "$here/fuzz/regressions/$t" ] && inputs+=("$here/fuzz/regressions/$t")
  local rc=0
  # -rss_limit_mb: a parser that allocates 2 GB for a small file is a finding (a bomb).
  # -timeout: one input taking 10 s is a hang. Leak detection is libFuzzer's default (on).
  ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/findings/$t/" "${inputs[@]}" >"$log" 2>&1 || rc=$?
  local execs files bytes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  files=$(find "$work/corpus/$t" -type f | wc -l)
  bytes=$(du -sb "$work/corpus/$t" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "${execs:-?}" "$files" "$bytes" \
    "$([ $rc -eq 0 ] && echo ok || echo "FINDING (exit $rc): $log")"
  return $rc
}
export -f fuzz_one
export work build seconds here

echo "== fuzz: ${#targets[@]} targets, ${seconds} s each, $parallel at a time"
printf 'target\tseconds\texecutions\tcorpus_files\tcorpus_bytes\tresult\n'
status=0
printf '%s\n' "${targets[@]}" | xargs -P "$parallel" -I{} bash -c 'fuzz_one {}' || status=$?
if [ $status -ne 0 ]; then
  echo "fuzz: findings; logs and inputs under $work/{logs,findings}" >&2
  for t in "${targets[@]}"; do
    grep -q -E 'ERROR|fuzz target|SUMMARY' "$work/logs/$t.log" 2>/dev/null &&
      { echo "--- $t"; grep -E -A12 'ERROR|fuzz target ' "$work/logs/$t.log" | head -40; } >&2
  done
fi
exit $status
