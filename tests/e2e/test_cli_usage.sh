#!/usr/bin/env bash
# The command line as documented (README, `rawflow CMD --help`), whatever parses it (cli/args.*,
# CLI11 since issue #12): every command and subcommand answers --help with its usage line and
# options, exit 0; misuse is one line saying what and which command, then (for unknown options
# and stray arguments) the command's help, exit 2. No model is needed: every case fails or ends
# before one is loaded.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}"
bin=$RAWFLOW_BIN
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# help: usage line first, and the options each command documents
expect_help() {  # expect_help "CMD WORDS" OPTION...
  local words=$1; shift
  local out rc=0
  out=$("$bin" $words --help) || rc=$?
  [ "$rc" -eq 0 ] || fail "rawflow $words --help: exit $rc"
  [[ "$(head -n1 <<<"$out")" == "usage: rawflow $words "* ]] || fail "rawflow $words --help: usage line: $(head -n1 <<<"$out")"
  for opt in "$@"; do
    grep -qE -- "(^|[ ,])$opt( |,|$)" <<<"$out" || fail "rawflow $words --help: no $opt"
  done
}
expect_help run --set --print-config
expect_help generate --model -m --prompt -p --tokens --raw --n-predict -n --greedy --temp --top-k \
  --top-p --min-p --seed --batch -b --logprobs-out --prompt-tokens-out --llama-bidirectional \
  --threads -t --llama-order
expect_help describe --prompt -p --video --model --mmproj --budget --frames
expect_help transcribe --lang --prompt --model --mmproj
expect_help ask --image --video --audio --prompt --model --mmproj
expect_help inspect --mmproj --image --audio --budget --embeddings-out --repeat --resized-out \
  --size --resize-arithmetic
expect_help bench --model --n-prompt -p --n-gen -n --repetitions -r --batch -b --n-depth -d \
  --threads --llama-order
expect_help tokenize --model --text --jsonl --out --no-special --quiet
expect_help "model synth" --preset --layers --dtype --embd-dtype --seed --vocab --format --out -o \
  --mmproj --mmproj-out --mmproj-dtype
expect_help "model convert" --out --mmproj-out --dtype --embd-dtype --mmproj-dtype
out=$("$bin" --help) || fail "rawflow --help: exit $?"
for c in run batch generate describe transcribe ask inspect bench tokenize keygen model; do
  grep -qE "^  $c " <<<"$out" || fail "rawflow --help: no command $c"
done

# misuse: exit 2, the first line of stderr exactly
expect_usage_error() {  # expect_usage_error "FIRST LINE" ARGS...
  local want=$1; shift
  local err rc=0
  err=$("$bin" "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq 2 ] || fail "rawflow $*: exit $rc, want 2"
  [ "$(head -n1 <<<"$err")" == "$want" ] || fail "rawflow $*: said '$(head -n1 <<<"$err")', want '$want'"
}
expect_usage_error 'rawflow describe: unknown option `--bogus`' describe --bogus x.jpg
expect_usage_error 'rawflow describe: unknown option `--bogus`' describe --bogus=3 x.jpg
expect_usage_error 'rawflow describe: unknown option `--bogus`' describe -h --bogus
expect_usage_error 'rawflow describe: option `--model` needs a value' describe x.jpg --model
expect_usage_error 'rawflow describe: `--greedy` takes no value' describe --greedy=1 x.jpg
expect_usage_error 'rawflow bench: unexpected argument `extra`' bench extra
expect_usage_error '--n-depth -1: must be at least 0' bench --model /nonexistent -d -1
expect_usage_error 'rawflow run: give one CONFIG' run a.yaml b.yaml
expect_usage_error 'rawflow run: --set needs KEY=VALUE' run --set
expect_usage_error 'rawflow generate: give exactly one of --prompt and --tokens' generate --model m
expect_usage_error 'rawflow ask: give --prompt' ask --model m
expect_usage_error 'rawflow inspect: give one PATH' inspect a b
expect_usage_error 'rawflow model: unknown subcommand `frob`' model frob
expect_usage_error 'rawflow: unknown command `nosuch`' nosuch
# unknown options and stray arguments are followed by the command's help
err=$("$bin" describe --bogus x.jpg 2>&1 >/dev/null) || true
[[ "$(sed -n 2p <<<"$err")" == "usage: rawflow describe "* ]] || fail "describe --bogus: no help after the error"

# values: the last of a repeated option counts, negative numbers are values, --opt=value works
expect_usage_error '--n-depth -1: must be at least 0' bench --model /nonexistent -d 5 -d -1
expect_usage_error '--n-depth -2: must be at least 0' bench --model /nonexistent --n-depth=-2
out=$("$bin" run "$RAWFLOW_SOURCE_DIR/configs/demo.yaml" --print-config --set engine.threads=1 --set=engine.threads=2)
grep -qE '^ +threads: 2$' <<<"$out" || fail "run --set=...: last --set did not win"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli usage: all checks passed"
