#!/usr/bin/env bash
# Everything for the test suite on a fresh Debian 12 machine: installs dependencies, builds, runs
# every test (unit, parity against llama.cpp, end to end), then builds again with AddressSanitizer
# + UndefinedBehaviorSanitizer + LeakSanitizer and runs the suite under them, fuzzes each parser
# for 30 s, and runs the pipeline's threaded tests with ThreadSanitizer.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# Each phase's heading carries the minutes since the start, so a slow CI run shows where it went.
phase() { echo "== $1 (at $((SECONDS / 60)) min $((SECONDS % 60)) s)"; }
"$here/scripts/setup.sh"

phase "build (release)"
RAWFLOW_BUILD_DIR=$here/build "$here/scripts/build.sh"
phase "tests (release)"
(cd "$here/build" && ctest --output-on-failure --timeout 1800)

if [ "${RAWFLOW_SKIP_SANITIZERS:-0}" != 1 ]; then
  phase "build (ASan + UBSan)"
  RAWFLOW_BUILD_DIR=$here/build-asan "$here/scripts/build.sh" -DRAWFLOW_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  phase "tests (ASan + UBSan + LeakSanitizer)"
  # The whole suite again, parity scripts included (they run the sanitized rawflow binary), except
  # the demo model's smoke training and accuracy runs: their time goes to PyTorch and to playing
  # media in real time, and the rawflow paths they drive (transcribe, describe, run on files and
  # RTSP) run under the sanitizers in the parity and e2e tests. Leak detection is on, with no
  # suppression: none was needed (docs/reliability.md).
  (cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --timeout 1800 -E 'train_test_(smoke_training|accuracy)')

  # The fuzz targets (fuzz/, clang + libFuzzer + ASan/UBSan), 30 s each on the seeds made by
  # rawflow's own writers; their committed findings were replayed above (test_fuzz_regressions).
  phase "fuzz"
  RAWFLOW_BIN=$here/build/rawflow "$here/fuzz/run.sh" --seconds 30

  # ThreadSanitizer on the pipeline's threads: the node bodies, the scheduler stepped by its own
  # thread while others submit, the graph with sources, the sinks' threads, ZeroMQ and /metrics —
  # and the whole pipeline end to end (tests/e2e/test_pipeline_files.sh with the TSan binary).
  # oneTBB is built with TSan for this (scripts/build_tbb_tsan.sh: Debian's libtbb hides its
  # synchronisation from TSan). One engine thread (OMP_NUM_THREADS=1): libgomp is not
  # instrumented. Suppressions: only libraries not built with TSan (tests/sanitizers/tsan.supp).
  tsan_tests="test_windows test_framing test_result_order test_items_sink test_decoder_node test_batch_scheduler test_graph test_outputs"
  phase "build (ThreadSanitizer, with oneTBB built with ThreadSanitizer)"
  "$here/scripts/build_tbb_tsan.sh" "$here/build-tsan/tbb"
  cmake -S "$here" -B "$here/build-tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAWFLOW_TSAN=ON \
    -DTBB_DIR="$here/build-tsan/tbb/lib/cmake/TBB" >/dev/null
  # shellcheck disable=SC2086
  ninja -C "$here/build-tsan" -j "$(nproc)" $tsan_tests rawflow rawflow_subscriber
  phase "tests (ThreadSanitizer)"
  export OMP_NUM_THREADS=1 RAWFLOW_TEST_WORK=$here/build-tsan/test-work RAWFLOW_SOURCE_DIR=$here
  reports=$here/build-tsan/tsan-reports
  rm -rf "$reports" && mkdir -p "$RAWFLOW_TEST_WORK" "$reports"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$here/tests/sanitizers/tsan.supp"
  for t in $tsan_tests; do
    echo "-- $t"
    # The two ZeroMQ stall tests push messages until a high-water mark fills: 7 minutes under
    # TSan for what their other cases already cover. They run in the release and ASan builds.
    args=()
    [ "$t" = test_outputs ] && args=("--run_test=!zmq_isolated_mode_keeps_serving_a_reader_next_to_a_stalled_one:!zmq_stalled_subscriber_never_slows_the_publisher")
    "$here/build-tsan/tests/$t" "${args[@]}"
  done
  echo "-- e2e test_pipeline_files.sh"
  # Reports go to files: the script also runs rawflow where it must fail, and a report there would
  # otherwise pass for the expected failure.
  TSAN_OPTIONS="$TSAN_OPTIONS:log_path=$reports/report" RAWFLOW_BIN=$here/build-tsan/rawflow \
    RAWFLOW_SUBSCRIBER_BIN=$here/build-tsan/rawflow_subscriber bash "$here/tests/e2e/test_pipeline_files.sh"
  if [ -n "$(ls -A "$reports")" ]; then
    echo "ThreadSanitizer reports from the end-to-end run:" >&2
    cat "$reports"/* >&2
    exit 1
  fi
  phase "done"
fi
