#!/usr/bin/env bash
# Everything for the test suite on a fresh Debian 12 machine: installs dependencies, builds, runs
# every test (unit, parity against llama.cpp), then builds again with AddressSanitizer +
# UndefinedBehaviorSanitizer and runs the unit tests under them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"

echo "== build (release)"
RAWFLOW_BUILD_DIR=$here/build "$here/scripts/build.sh"
echo "== tests (release)"
(cd "$here/build" && ctest --output-on-failure --timeout 1800)

if [ "${RAWFLOW_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== build (ASan + UBSan)"
  RAWFLOW_BUILD_DIR=$here/build-asan "$here/scripts/build.sh" -DRAWFLOW_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  echo "== tests (ASan + UBSan)"
  # The whole suite again, parity scripts included (they run the sanitized rawflow binary), except
  # the demo model's smoke training and accuracy runs: their time goes to PyTorch and to playing
  # media in real time, and the rawflow paths they drive (transcribe, describe, run on files and
  # RTSP) run under the sanitizers in the parity and e2e tests.
  # OpenMP's runtime keeps thread-pool memory until exit: not a leak of ours.
  (cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --timeout 1800 -E 'train_test_(smoke_training|accuracy)')
fi
