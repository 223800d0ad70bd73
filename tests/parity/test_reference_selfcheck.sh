#!/usr/bin/env bash
# The plain numpy reference (tests/reference/gemma4_ref.py) checked on its own, without rawflow:
# safetensors reading, the HWC tile layout and x/y positions of the vision embedder, audio framing,
# the attention masks of a prompt with two images and an audio clip against hand-written
# matrices, and that those masks act in a whole forward pass. Sub-second.
set -euo pipefail
: "${RAWFLOW_SOURCE_DIR:?}"
work=${RAWFLOW_TEST_WORK:-/tmp}/reference-selfcheck
rm -rf "$work" && mkdir -p "$work"
RAWFLOW_TEST_WORK=$work /usr/bin/python3 "$RAWFLOW_SOURCE_DIR/tests/reference/test_ref_selfcheck.py"
