#!/usr/bin/env bash
# The main job on an embedded default: installs dependencies, builds, synthesizes a small demo model
# on first run and generates from it. The demo model has RANDOM weights: its text is gibberish by
# design. Point --model at a released GGUF (e.g. gemma-4-12b-it-qat-q4_0.gguf) for real answers.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
RAWFLOW_BUILD_DIR=$here/build "$here/scripts/build.sh"
rawflow=$here/build/rawflow
models=${RAWFLOW_DEMO_DIR:-$HOME/.cache/rawflow}
mkdir -p "$models"
demo=$models/demo-tiny-q8_0.gguf
[ -f "$demo" ] || "$rawflow" model synth --preset tiny --dtype q8_0 --seed 7 --out "$demo"
echo "== rawflow generate (random-weight demo model: expect gibberish)"
"$rawflow" generate --model "$demo" -p "Describe a busy street at night." -n 48 --seed 1 "$@"
