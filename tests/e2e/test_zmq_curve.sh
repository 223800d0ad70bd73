#!/usr/bin/env bash
# The ZeroMQ output with CURVE (outputs.zmq.curve): keys from `rawflow keygen`, `rawflow run` on
# the demo file publishing over tcp, and three real subscribers (examples/subscriber.py):
#  - one whose public key is in the allowed list receives the results, the stream's end last;
#  - one with a CURVE key not in the list receives nothing;
#  - one without CURVE receives nothing;
#  - the refusals are counted (rawflow_zmq_subscribers_denied_total in the closing stats);
#  - bad key files are one clear error at start, without the key in it.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
source "$RAWFLOW_SOURCE_DIR/tests/e2e/lib.sh"
work=$RAWFLOW_TEST_WORK/zmq_curve
rm -rf "$work" && mkdir -p "$work"
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null
fail() { echo "FAIL: $*"; exit 1; }

for k in server viewer intruder; do "$RAWFLOW_BIN" keygen "$work/$k" >/dev/null 2>&1; done
[ "$(stat -c %a "$work/server.key")" = 600 ] || fail "the secret key file is not mode 600"
"$RAWFLOW_BIN" keygen "$work/server" >/dev/null 2>"$work/again.err" && fail "keygen replaced a key"
grep -q "never replaced" "$work/again.err" || fail "no reason when a key exists"
{ echo "# who may read the results"; grep -v '^#' "$work/viewer.pub"; } >"$work/allowed"

port=$(free_port)
run() {  # extra --set arguments
  "$RAWFLOW_BIN" run "$src/configs/demo.yaml" \
    --set "streams.0.url=$work/demo.mkv" --set "engine.model=$work/tiny.gguf" \
    --set "engine.mmproj=$work/tiny-mmproj.gguf" --set "outputs.jsonl.path=$work/results.jsonl" \
    --set "outputs.stdout.enabled=false" --set "tasks.0.max_new_tokens=24" \
    --set "tasks.1.max_new_tokens=24" --set "metrics.interval_s=1" \
    --set "outputs.zmq.endpoint=tcp://127.0.0.1:$port" \
    --set "outputs.zmq.curve.secret_key_file=$work/server.key" \
    --set "outputs.zmq.curve.allowed_clients_file=$work/allowed" "$@"
}

echo "== bad key files: one clear error, no key in it"
echo "not a key" >"$work/bad.key"
set +e
run --set "outputs.zmq.curve.secret_key_file=$work/bad.key" >/dev/null 2>"$work/bad.err"; rc=$?
set -e
[ "$rc" != 0 ] || fail "a bad secret key file was accepted"
grep -q "bad.key': no CURVE key in it" "$work/bad.err" || { cat "$work/bad.err"; fail "no clear message"; }
{ echo "$(grep -v '^#' "$work/viewer.pub")"; echo "0123456789"; } >"$work/allowed-bad"
set +e
run --set "outputs.zmq.curve.allowed_clients_file=$work/allowed-bad" >/dev/null 2>"$work/bad2.err"; rc=$?
set -e
[ "$rc" != 0 ] || fail "a bad allowed-clients file was accepted"
grep -q "allowed-bad', line 2: not a CURVE public key" "$work/bad2.err" ||
  { cat "$work/bad2.err"; fail "no clear message for the allowed list"; }
! grep -qF -- "$(grep -v "^#" "$work/server.key")" "$work"/*.err || fail "a secret key was printed"

echo "== an allowed subscriber receives, the others nothing"
sub() {  # name args...: a subscriber printing JSON, ended by the test
  timeout 60 $py "$src/examples/subscriber.py" --endpoint "tcp://127.0.0.1:$port" --json "${@:2}" \
    >"$work/$1.out" 2>"$work/$1.err" &
  pids+=($!)
}
pids=()
sub viewer --server-key "$work/server.pub" --client-key "$work/viewer.key"
sub intruder --server-key "$work/server.pub" --client-key "$work/intruder.key"
sub plain
sleep 1  # they connect and retry until rawflow binds; results come after the model loads
run 2>"$work/run.log" || { cat "$work/run.log"; fail "rawflow run failed"; }
sleep 1
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
$py - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
got = {n: [json.loads(l) for l in open(os.path.join(work, n + ".out")) if l.strip()]
       for n in ("viewer", "intruder", "plain")}
print({n: len(v) for n, v in got.items()}, "messages")
kinds = [e["kind"] for e in got["viewer"]]
assert "final" in kinds and "end" in kinds, kinds
assert not got["intruder"] and not got["plain"], (got["intruder"][:1], got["plain"][:1])
# Everything the allowed subscriber got is what the JSONL output wrote (same events, in order),
# as far as it was connected.
written = [json.loads(l) for l in open(os.path.join(work, "results.jsonl"))]
finals = [e for e in written if e["kind"] == "final"]
assert [e for e in got["viewer"] if e["kind"] == "final"] == finals[-len([k for k in kinds if k == "final"]):]
stats = [e for e in written if e["kind"] == "stats" and not e["stream"]][-1]["stats"]
denied = stats["rawflow_zmq_subscribers_denied_total"][0]["value"]
print("denied:", denied)
assert denied >= 1, denied  # the intruder (the plain one fails CURVE's handshake before ZAP)
PY
echo "PASS"
