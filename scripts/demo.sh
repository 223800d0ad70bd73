#!/usr/bin/env bash
# The main job on the embedded default: installs dependencies, builds, makes the sample clip (scenes
# of shapes, sentences in synthetic voices) and a small random-weight model on first run
# (scripts/make_demo_media.sh), then runs the pipeline of configs/demo.yaml on it and prints the
# results. The demo model has RANDOM weights: its text is gibberish by design. See the README for
# pointing the config at the released GGUF + mmproj.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
RAWFLOW_BUILD_DIR=$here/build "$here/scripts/build.sh"
RAWFLOW_BIN=$here/build/rawflow "$here/scripts/make_demo_media.sh" "$here/build/demo"
echo "== what the sample holds (build/demo/demo.txt)"
cat "$here/build/demo/demo.txt"
echo "== rawflow run configs/demo.yaml (random-weight demo model: expect gibberish text)"
"$here/build/rawflow" run "$here/configs/demo.yaml" "$@"
