#!/usr/bin/env bash
# Two formats, one model: the same random weights written as GGUF and as a Hugging Face directory
# (config.json + model.safetensors + tokenizer.json) give the same log-probs, ≤ 1e-5 everywhere.
# Both load through different readers, name maps, shape orders and configuration parsers; the
# computation after loading is the same, so anything above float noise is a loader bug.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}"
work=${RAWFLOW_TEST_WORK:-/tmp}/two-formats
rm -rf "$work" && mkdir -p "$work"
py=/usr/bin/python3
for preset in tiny geometry; do
  for dtype in f32 bf16; do
    "$RAWFLOW_BIN" model synth --preset "$preset" --dtype "$dtype" --seed 77 --out "$work/$preset-$dtype.gguf" >/dev/null
    "$RAWFLOW_BIN" model synth --preset "$preset" --dtype "$dtype" --seed 77 --format safetensors --out "$work/$preset-$dtype-hf" >/dev/null
    vocab=$("$RAWFLOW_BIN" inspect "$work/$preset-$dtype.gguf" | awk '$1=="token_embd.weight"{print $5}')
    tokens=$("$py" -c "import random; r=random.Random(3); print(','.join(['2']+[str(r.randrange(300,$vocab)) for _ in range(99)]))")
    for src in "$preset-$dtype.gguf" "$preset-$dtype-hf"; do
      "$RAWFLOW_BIN" generate --model "$work/$src" --tokens "$tokens" -n 0 --logprobs-out "$work/$src.f32" 2>/dev/null
    done
    echo "== $preset $dtype: GGUF vs safetensors"
    "$py" "$RAWFLOW_SOURCE_DIR/tests/parity/compare_logprobs.py" "$work/$preset-$dtype.gguf.f32" \
      "$work/$preset-$dtype-hf.f32" --vocab "$vocab" --max-abs 1e-5 --min-argmax 100
  done
done
