#!/usr/bin/env bash
# `rawflow run configs/rtsp-cameras.yaml` against a real RTSP server (GStreamer's, tests/rtsp/)
# carrying H.264 video and AAC audio, with a real ZeroMQ subscriber and a /metrics scrape:
#  - partial and final results of a transcribe and a describe task arrive, each request's
#    partials before its final, finals of a task in media order, ranges matching the windows;
#  - four cameras (one over UDP) share the engine;
#  - the server is killed and restarted: a gap event, reconnects, results resume;
#  - the server is frozen (SIGSTOP): the watchdog fires within its budget, a gap, recovery after
#    SIGCONT; nothing hangs (every wait below is bounded).
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
work=$RAWFLOW_TEST_WORK/pipeline_rtsp
rm -rf "$work" && mkdir -p "$work"
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rtsp_port=$(free_port); zmq_port=$(free_port); http_port=$(free_port)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_server() {
  $py "$src/tests/rtsp/rtsp_server.py" "$rtsp_port" --audio aac >"$work/server.out" 2>&1 &
  server=$!
  pids+=($server)
  for _ in $(seq 100); do grep -q READY "$work/server.out" && return 0; sleep 0.1; done
  echo "FAIL: RTSP server did not start"; cat "$work/server.out"; exit 1
}
start_server
url="rtsp://127.0.0.1:$rtsp_port/live"

$py "$src/examples/subscriber.py" --endpoint "tcp://127.0.0.1:$zmq_port" --json >"$work/events.jsonl" 2>"$work/sub.err" &
sub=$!; pids+=($sub)
sleep 1

args=(--set "engine.model=$work/tiny.gguf" --set "engine.mmproj=$work/tiny-mmproj.gguf"
      --set "engine.kv_cache_budget_mb=512" --set "engine.max_batch=4"
      --set "outputs.zmq.endpoint=tcp://127.0.0.1:$zmq_port" --set "outputs.jsonl.path=$work/results.jsonl"
      --set "metrics.http.listen=127.0.0.1:$http_port" --set "metrics.interval_s=5"
      --set "tasks.0.window_s=4" --set "tasks.0.overlap_s=0" --set "tasks.0.silence_gate.enabled=false"
      --set "tasks.0.deadline_s=0" --set "tasks.0.max_new_tokens=8"
      --set "tasks.1.interval_s=4" --set "tasks.1.max_new_tokens=8" --set "tasks.1.deadline_s=0"
      --set "tasks.2.interval_s=8" --set "tasks.2.max_new_tokens=4"
      --set "stream_defaults.reconnect.initial_delay_s=0.5" --set "stream_defaults.reconnect.max_delay_s=2"
      --set "stream_defaults.watchdog.read_timeout_s=2" --set "stream_defaults.watchdog.open_timeout_s=5"
      --set "stream_defaults.queue.max_pending_requests=4")
for i in 0 1 2 3; do args+=(--set "streams.$i.url=$url"); done
"$RAWFLOW_BIN" run "$src/configs/rtsp-cameras.yaml" "${args[@]}" >"$work/run.out" 2>"$work/run.log" &
run=$!; pids+=($run)

count_finals() { grep -c '"kind":"final"' "$work/events.jsonl" 2>/dev/null || true; }
wait_for() {  # seconds, description, command
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 10))); do "$@" && return 0; kill -0 $run 2>/dev/null || { echo "FAIL: rawflow exited"; cat "$work/run.log"; exit 1; }; sleep 0.1; done
  echo "FAIL: timed out waiting for $what"; tail -20 "$work/run.log"; exit 1
}
has_finals() { [ "$(count_finals)" -ge "$1" ]; }
has_gaps() { [ "$(grep -c '"kind":"gap"' "$work/events.jsonl" 2>/dev/null || true)" -ge "$1" ]; }

wait_for 90 "first results" has_finals 8
echo "results before the faults: $(count_finals)"
$py - "$http_port" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
for name in ("rawflow_audio_frames_in_total", "rawflow_sequences_per_forward_bucket"):
    assert name in text, name
print("metrics: ok (%d lines)" % len(text.splitlines()))
PY

echo "== server killed, restarted"
kill -9 $server; sleep 3; start_server
before=$(count_finals)
wait_for 60 "a gap event" has_gaps 1
wait_for 90 "results after the restart" has_finals $((before + 4))

echo "== server frozen (SIGSTOP)"
kill -STOP $server
t0=$(date +%s.%N)
stalls() { grep -c '"kind":"error".*stalled' "$work/events.jsonl" 2>/dev/null || true; }
has_stalls() { [ "$(stalls)" -ge "$1" ]; }
n=$(stalls)
wait_for 60 "the watchdog's stall event" has_stalls $((n + 1))
# Budget: read_timeout_s = 2 s for the watchdog; 4 s of margin for a loaded 2-core machine.
took=$($py -c "import time; print('%.1f' % (time.time() - $t0))")
echo "watchdog: stall reported $took s after the freeze"
$py -c "import sys; sys.exit(0 if $took <= 6.0 else 1)" || { echo "FAIL: watchdog too slow"; exit 1; }
gaps=$(grep -c '"kind":"gap"' "$work/events.jsonl")
kill -CONT $server
wait_for 60 "the gap after SIGCONT" has_gaps $((gaps + 1))
before=$(count_finals)
wait_for 90 "results after SIGCONT" has_finals $((before + 4))

kill -INT $run
for _ in $(seq 300); do kill -0 $run 2>/dev/null || break; sleep 0.1; done
if kill -0 $run 2>/dev/null; then echo "FAIL: rawflow did not stop on SIGINT within 30 s"; exit 1; fi
rc=0; wait $run || rc=$?
tail -1 "$work/run.log"
[ $rc = 0 ] || { echo "FAIL: rawflow exited with status $rc after SIGINT"; tail -20 "$work/run.log"; exit 1; }
sleep 0.5
$py - "$work/events.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = {}
for e in ev:
    kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
print("events:", kinds)
assert kinds.get("partial", 0) > 0 and kinds.get("final", 0) > 0 and kinds.get("gap", 0) >= 2, kinds
# Per request: partials, then exactly one final (or error).
seen_final = set()
for e in ev:
    rid = e["request_id"]
    if e["kind"] == "partial":
        assert rid not in seen_final, ("partial after final", rid)
    elif e["kind"] in ("final", "error") and rid:
        assert rid not in seen_final, ("two finals", rid)
        seen_final.add(rid)
# Finals of one stream's task in media order, with the window's length.
last = {}
tasks = set()
for e in ev:
    if e["kind"] != "final":
        continue
    key = (e["stream"], e["task"])
    tasks.add(e["task"])
    assert e["media_start"] >= last.get(key, -1), ("out of order", key, e["media_start"])
    last[key] = e["media_start"]
    if e["task"] == "speech":
        assert e["media_end"] - e["media_start"] <= 4.0 + 1e-6, e
assert {"speech", "scene"} <= tasks, tasks
streams = {e["stream"] for e in ev if e["kind"] == "final"}
assert {"lobby", "entrance", "dock", "parking"} <= streams, streams
print("PASS")
PY
