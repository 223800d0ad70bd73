#!/usr/bin/env bash
# Stopping `rawflow run` loses nothing (engine.shutdown_grace_s), on the demo file looped to 5 min, 2 s
# windows and long answers, so requests are in flight when the signal comes:
#  - SIGTERM with a grace period: the inputs stop, every request made (the windows the stop
#    closed included) gets its final, no error, exit 0;
#  - SIGINT with no grace: what is unfinished is cancelled, one error event each naming the
#    request, exit 4;
#  - a second SIGINT cancels at once, whatever the grace period;
#  - kill -9: every line of the JSONL file is a whole JSON object.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
work=$RAWFLOW_TEST_WORK/shutdown
rm -rf "$work" && mkdir -p "$work"
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null
fail() { echo "FAIL: $*"; exit 1; }
# 5 minutes: the input is still being read when the signal comes.
ffmpeg -nostdin -loglevel error -y -stream_loop 9 -i "$work/demo.mkv" -c copy "$work/long.mkv"
cat >"$work/run.yaml" <<YAML
streams: [{name: demo, url: $work/long.mkv}]
tasks:
  - {name: speech, kind: transcribe, window_s: 2, max_new_tokens: 200}
  - {name: scene, kind: describe, interval_s: 2, frames_per_request: 1, image_budget: 70, max_new_tokens: 200}
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf, threads: 1, max_batch: 2}
outputs: {jsonl: {path: $work/out.jsonl}, stdout: {enabled: false}}
metrics: {interval_s: 0}
YAML
start() {  # name [--set ...]: starts a run in the background; waits for its first final
  rm -f "$work/out.jsonl"
  "$RAWFLOW_BIN" run "$work/run.yaml" "${@:2}" 2>"$work/$1.log" &
  pid=$!
  for _ in $(seq 300); do
    grep -q '"kind":"final"' "$work/out.jsonl" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "$1: no final within 15 s"
}
finish() {  # expected exit status
  set +e; wait $pid; rc=$?; set -e
  [ "$rc" = "$1" ] || { tail -3 "$work/$name.log"; fail "$name: exit $rc, expected $1"; }
}
check() {  # what: the JSONL of the run, checked by the Python below
  $py - "$work/out.jsonl" "$1" <<'PY'
import json, sys
path, what = sys.argv[1:]
ev = [json.loads(l) for l in open(path)]  # every line whole
finals = [e for e in ev if e["kind"] == "final"]
errors = [e for e in ev if e["kind"] == "error"]
ends = [e for e in ev if e["kind"] == "end"]
ids = {e["request_id"] for e in finals + errors}
print("%s: %d finals, %d errors, the stream's end %s" % (what, len(finals), len(errors), ends[-1]["complete"] if ends else None))
assert ends and ends[-1]["complete"] is False, "a stopped file ends incomplete"
if what == "grace":
    assert not errors, errors[:1]
    assert len(finals) >= 3, "requests in flight were not finished"
else:
    cancelled = [e for e in errors if e["error"].endswith("cancelled: the run stopped before it finished")]
    assert cancelled, errors[:2]
    for e in cancelled:
        assert e["error"].startswith("stream `demo`, request %d (task `%s`, media " % (e["request_id"], e["task"])), e
assert len(ids) == len(finals) + len(errors), "a request has both a final and an error"
PY
}

name=grace; start grace --set engine.shutdown_grace_s=60
kill -TERM $pid; finish 0
grep -q "stopped; every request in flight finished" "$work/grace.log" || fail "no stop summary"
check grace

name=nograce; start nograce --set engine.shutdown_grace_s=0
kill -INT $pid; finish 4
grep -q "were cancelled (an error event each)" "$work/nograce.log" || fail "no cancel summary"
check cancelled

name=twice; start twice --set engine.shutdown_grace_s=600
t0=$(date +%s)
kill -INT $pid; sleep 0.2; kill -INT $pid; finish 4
[ $(( $(date +%s) - t0 )) -lt 10 ] || fail "the second signal did not cancel at once"
grep -q "at the second signal" "$work/twice.log" || fail "no second-signal summary"
check cancelled

echo "== kill -9: no line of the JSONL is cut"
for i in 1 2 3 4 5; do
  name=kill$i; start kill$i
  sleep "0.$((RANDOM % 9))"
  kill -9 $pid; wait $pid 2>/dev/null || true
  $py -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$work/out.jsonl" ||
    fail "a cut line after kill -9"
done
echo "PASS"
