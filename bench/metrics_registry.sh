#!/usr/bin/env bash
# The metrics registry and /metrics server of two revisions side by side (issue #12 item 6:
# prometheus-cpp replaced the hand-written registry; "if it measurably does worse here, keep
# ours"): builds bench/metrics_registry.cpp against each revision's pipeline/metrics.* and
# nodes/metrics_server.*, then runs the two binaries alternately REPS times and prints every run
# and the median of each measurement.
#
#   bench/metrics_registry.sh OLD_REV NEW_REV [REPS=5]     e.g. main libs 5
#
# A revision whose metrics.cpp includes prometheus-cpp is linked with its core library (and with
# its pull library and civetweb if metrics_server.cpp uses its exposer).
set -euo pipefail
old=${1:?old revision}
new=${2:?new revision}
reps=${3:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-/tmp/rawflow-bench-metrics}
mkdir -p "$work"
build() {  # build REV NAME
  local src=$work/$2
  rm -rf "$src" && mkdir -p "$src/pipeline" "$src/nodes"
  for f in pipeline/metrics.h pipeline/metrics.cpp nodes/metrics_server.h nodes/metrics_server.cpp; do
    git -C "$here" show "$1:$f" >"$src/$f"
  done
  # The bench itself scrapes with cpp-httplib's client (Debian builds it as a library).
  local libs=($(pkg-config --libs cpp-httplib) -lpthread)
  if grep -q prometheus/exposer.h "$src/nodes/metrics_server.cpp"; then
    libs+=(-lprometheus-cpp-pull -lcivetweb-cpp -lcivetweb)
  fi
  if grep -q '#include <prometheus/' "$src/pipeline/metrics.cpp" "$src/pipeline/metrics.h"; then
    libs+=(-lprometheus-cpp-core -lz)
  fi
  # The flags of the Release build (CMAKE_BUILD_TYPE=Release, RAWFLOW_NATIVE=ON).
  g++ -std=c++20 -O3 -DNDEBUG -march=native $(pkg-config --cflags cpp-httplib) -I"$src" -o "$work/bench-$2" \
    "$here/bench/metrics_registry.cpp" "$src/pipeline/metrics.cpp" "$src/nodes/metrics_server.cpp" \
    "${libs[@]}"
}
build "$old" old
build "$new" new
for r in $(seq "$reps"); do
  "$work/bench-old" >"$work/old.$r"
  "$work/bench-new" >"$work/new.$r"
done
/usr/bin/python3 - "$work" "$reps" <<'PY'
import sys, statistics
work, reps = sys.argv[1], int(sys.argv[2])
def load(name):
    runs = []
    for r in range(1, reps + 1):
        runs.append({l.split()[0]: (float(l.split()[1]), l.split()[2]) for l in open(f"{work}/{name}.{r}")})
    return runs
old, new = load("old"), load("new")
print(f"{'measurement':24} {'old (median)':>14} {'new (median)':>14}  new/old   runs old | new")
for key in old[0]:
    o = [run[key][0] for run in old]; n = [run[key][0] for run in new]; unit = old[0][key][1]
    mo, mn = statistics.median(o), statistics.median(n)
    print(f"{key:24} {mo:11.2f} {unit:2} {mn:11.2f} {unit:2}  {mn / mo if mo else 0:6.2f}   "
          + " ".join(f"{x:.1f}" for x in o) + " | " + " ".join(f"{x:.1f}" for x in n))
PY
