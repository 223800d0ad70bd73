#!/usr/bin/env bash
# `rawflow run configs/rtsp-cameras.yaml` against a real RTSP server (GStreamer's, tests/rtsp/)
# carrying H.264 video and AAC audio, with a real ZeroMQ subscriber and a /metrics scrape:
#  - partial and final results of a transcribe and a describe task arrive, each request's
#    partials before its final, finals of a task in media order, ranges matching the windows;
#  - four cameras (one over UDP) share the engine;
#  - the server is killed and restarted: a gap event, reconnects, results resume;
#  - the server is frozen (SIGSTOP): the watchdog fires within its budget, rawflow_source_up
#    drops to 0, a gap, recovery after SIGCONT (rawflow_source_up 1 again);
#  - the feeder stalls (SIGUSR1: sessions and RTCP stay up, no media) for less than the read
#    budget: no error, no reconnect, a gap as long as the stall on every stream with audio (its
#    timestamps jumped), results resume on the timeline after the gap;
#  - the feeder stalls for longer than the budget: the watchdog's error within the budget, the
#    windows open at the loss processed then (not when the feeder resumes), a gap covering the
#    stall and not the reconnection's probe, then results, in that order;
#  - nothing hangs (every wait below is bounded).
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
source "$RAWFLOW_SOURCE_DIR/tests/e2e/lib.sh"
work=$RAWFLOW_TEST_WORK/pipeline_rtsp
rm -rf "$work" && mkdir -p "$work"
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null
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
# The C++ example subscriber's readable lines, for the live wall clock they show.
"${RAWFLOW_SUBSCRIBER_BIN:?}" --endpoint "tcp://127.0.0.1:$zmq_port" --topic lobby/speech \
  --finals-only --count 3 >"$work/sub_cxx.out" 2>&1 &
sub_cxx=$!; pids+=($sub_cxx)
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
wait_for 30 "the C++ subscriber's 3 finals" bash -c "! kill -0 $sub_cxx 2>/dev/null"
cat "$work/sub_cxx.out"
grep -Eq '^lobby/speech \[[0-9.]+–[0-9.]+s @ [0-9]{2}:[0-9]{2}:[0-9]{2}\] ' "$work/sub_cxx.out" ||
  { echo "FAIL: rawflow_subscriber printed no live final with its wall clock"; exit 1; }
echo "results before the faults: $(count_finals)"
$py - "$http_port" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
for name in ("rawflow_audio_frames_in_total", "rawflow_sequences_per_forward_bucket"):
    assert name in text, name
samples = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        key, value = line.rsplit(" ", 1)
        samples[key] = float(value)
# Every stream has its three queue gauges; a depth is a whole count, never negative (each unit
# and request leaves the count it entered).
depths = {k: v for k, v in samples.items() if k.startswith("rawflow_queue_depth{")}
streams = {k.split('stream="')[1].split('"')[0] for k in depths}
assert len(streams) == 4 and len(depths) == 12, sorted(depths)
assert all(v >= 0 and v == int(v) for v in depths.values()), depths
rate = samples["rawflow_decode_tokens_per_second"]
assert rate >= 0, rate
print("metrics: ok (%d lines); queue depths %s; %.1f tokens/s" %
      (len(text.splitlines()), sorted(set(depths.values())), rate))
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
sources_up() {  # the rawflow_source_up values of the four streams, from /metrics
  $py - "$http_port" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
print(" ".join(l.rsplit(" ", 1)[1] for l in text.splitlines() if l.startswith("rawflow_source_up{")))
PY
}
all_down() { [ "$(sources_up)" = "0 0 0 0" ]; }
all_up() { [ "$(sources_up)" = "1 1 1 1" ]; }
wait_for 10 "rawflow_source_up 0 on every stream while frozen" all_down
gaps=$(grep -c '"kind":"gap"' "$work/events.jsonl")
kill -CONT $server
wait_for 60 "the gap after SIGCONT" has_gaps $((gaps + 1))
before=$(count_finals)
wait_for 90 "results after SIGCONT" has_finals $((before + 4))
wait_for 30 "rawflow_source_up 1 on every stream after SIGCONT" all_up
echo "rawflow_source_up: 0 on every stream while frozen, 1 after"

# The feeder: SIGUSR1 stalls it, SIGUSR2 resumes it; the server acknowledges each on stdout.
# $sent_at: when the signal was sent (the stall's times are taken before the signals, so that the
# polling for the acknowledgement does not count).
feeder() {  # SIGNAL ACK
  local n; n=$(grep -c "^$2 " "$work/server.out" || true)
  sent_at=$(now)
  kill -"$1" $server
  for _ in $(seq 100); do [ "$(grep -c "^$2 " "$work/server.out" || true)" -gt "$n" ] && return 0; sleep 0.1; done
  echo "FAIL: the RTSP server did not acknowledge SIG$1"; exit 1
}
now() { date +%s.%N; }
# Checks the events of one stall; `kind` = short (below the read budget) or long.
check_stall() {  # kind stalled_at resumed_at
  $py - "$work/events.jsonl" "$@" <<'PY'
import datetime, json, sys
path, kind, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
stall = t1 - t0
def wall(e):
    return datetime.datetime.strptime(e["wall_utc"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
ev = [json.loads(l) for l in open(path)]
# wall_utc has millisecond resolution; the events of this stall are those made after it began.
ev = [e for e in ev if wall(e) >= t0 - 0.002]
with_audio = ["lobby", "entrance", "parking"]  # dock has audio disabled
closed_by_loss = []
for stream in with_audio + ["dock"]:
    mine = [e for e in ev if e["stream"] == stream]
    gaps = [i for i, e in enumerate(mine) if e["kind"] == "gap"]
    # The stream's own errors (a request's error, e.g. dropped from a full queue, is not one).
    errors = [i for i, e in enumerate(mine) if e["kind"] == "error" and not e["task"]]
    if kind == "short":
        assert not errors, (stream, "error during a short stall", mine[errors[0]])
        if stream == "dock":
            # Video only: its timestamps jump, but a gap is kept on the audio clock (which a
            # video-only stream does not have), so nothing is reported.
            assert not gaps, (stream, [mine[i] for i in gaps])
            continue
        assert len(gaps) == 1, (stream, "one gap expected", [mine[i] for i in gaps])
        g = mine[gaps[0]]
        assert "timestamps jumped" in g["text"], g
        # The jump equals the stall within +-0.3 s: buffer boundaries (40 ms video, 21 ms audio)
        # and the signals' latency in the server's main loop on a loaded machine.
        d = g["media_end"] - g["media_start"]
        print("%s: short stall of %.2f s -> gap %.2f s (%.2f-%.2f)" % (stream, stall, d, g["media_start"], g["media_end"]))
        assert stall - 0.3 <= d <= stall + 0.3, (stream, stall, d)
    else:
        assert errors and "stalled" in mine[errors[0]]["error"], (stream, "no stall error")
        first_error = mine[errors[0]]
        took = wall(first_error) - t0
        # read_timeout_s = 2 s, counted from the last packet (which comes after t0); 2 s of margin
        # above for a loaded 2-core machine.
        print("%s: watchdog error %.2f s after the stall" % (stream, took))
        assert 2.0 - 0.05 <= took <= 2.0 + 2.0, (stream, took)
        assert gaps, (stream, "no gap after the long stall")
        g = mine[gaps[0]]
        assert gaps[0] > errors[0], (stream, "gap before the stall error")
        assert "reconnected" in g["text"], g
        d = g["media_end"] - g["media_start"]
        made = wall(g) - t0
        print("%s: long stall of %.2f s -> gap %.2f s, reported %.2f s after the stall" % (stream, stall, d, made))
        # Covers the stall (the last packets may arrive ~0.1 s after the valves closed), and is
        # not longer than the time since the media stopped.
        assert d >= stall - 0.2, (stream, stall, d)
        assert d <= made + 0.1, (stream, made, d)
        # The outage ends when the new connection opened: the ~1 s the probe then reads is
        # delivered, not lost (it used to be counted: a 6 s stall gave a 7.2 s gap).
        assert d <= stall + 0.6, (stream, "gap longer than the outage", stall, d)
        assert wall(g) >= t1 - 0.002, (stream, "gap reported before the feeder resumed")
        # What arrived before the stall is processed when the loss is detected, not held until
        # the camera returns: the windows the loss closed end where the gap begins, and their
        # results come before the feeder resumed.
        closed = [e for e in mine if e["kind"] in ("final", "error") and e["task"] and
                  abs(e["media_end"] - g["media_start"]) < 1e-3]
        late = [e for e in closed if wall(e) > t1]
        assert not late, (stream, "a window closed by the loss waited for the return", late[0])
        if closed:  # none when nothing was open (a remainder under 0.5 s, no frame yet)
            closed_by_loss.append(stream)
            print("%s: %d window(s) closed by the loss, results %.2f s after the stall" %
                  (stream, len(closed), max(wall(e) for e in closed) - t0))
    if stream == "dock":
        continue
    # Results resume after the gap, on the timeline after it; none straddles it.
    g = mine[gaps[0]]
    finals = [e for e in mine[gaps[0]:] if e["kind"] == "final"]
    for e in finals:
        assert e["media_end"] <= g["media_start"] + 1e-3 or e["media_start"] >= g["media_end"] - 1e-3, (g, e)
    resumed = [e for e in finals if e["media_start"] >= g["media_end"] - 1e-3]
    assert resumed, (stream, "no results after the gap")
    # The first transcription window after a gap starts where the gap ends (its result may be an
    # error if the queue dropped it; it still carries its range).
    speech = [e["media_start"] for e in mine[gaps[0]:] if e["task"] == "speech" and
              e["kind"] in ("final", "error") and e["media_start"] >= g["media_end"] - 1e-3]
    assert speech and abs(min(speech) - g["media_end"]) < 1e-3, (g, sorted(speech)[:1])
if kind == "long":
    assert len(closed_by_loss) >= 2, ("windows closed by the loss on too few streams", closed_by_loss)
print("stall (%s): ok" % kind)
PY
}
stream_progress() {  # what since_line streams...: true when, after line N, every stream has a
  # gap (what=gap) or a final on the timeline after its first gap (what=resumed)
  $py - "$work/events.jsonl" "$@" <<'PY'
import json, sys
path, what, since, streams = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
ev = [json.loads(l) for l in open(path).readlines()[since:] if l.strip()]
def done(s):
    mine = [e for e in ev if e["stream"] == s]
    gaps = [i for i, e in enumerate(mine) if e["kind"] == "gap"]
    if not gaps or what == "gap":
        return bool(gaps)
    end = mine[gaps[0]]["media_end"]
    return any(e["kind"] == "final" and e["media_start"] >= end - 1e-3 for e in mine[gaps[0]:])
sys.exit(0 if all(done(s) for s in streams) else 1)
PY
}
lines() { wc -l <"$work/events.jsonl"; }

echo "== feeder stalled for less than the read budget (1.2 s < 2 s)"
mark=$(lines)
feeder USR1 STALLED; t0=$sent_at
sleep 1.2
feeder USR2 RESUMED; t1=$sent_at
wait_for 30 "the short stall's gaps" stream_progress gap "$mark" lobby entrance parking
wait_for 90 "results after the short stall" stream_progress resumed "$mark" lobby entrance parking
check_stall short "$t0" "$t1"

echo "== feeder stalled for longer than the read budget (6 s > 2 s)"
mark=$(lines); n=$(stalls)
feeder USR1 STALLED; t0=$sent_at
wait_for 30 "the watchdog's stall events" has_stalls $((n + 4))
sleep "$($py -c "import time; print(max(0.0, $t0 + 6 - time.time()))")"
feeder USR2 RESUMED; t1=$sent_at
wait_for 60 "the long stall's gaps" stream_progress gap "$mark" lobby entrance dock parking
wait_for 90 "results after the long stall" stream_progress resumed "$mark" lobby entrance parking
check_stall long "$t0" "$t1"

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
# Live results carry the wall clock of their media start. The window's end was received at
# media_start_utc + its length at the earliest (the clock's origin is the least arrival − t over
# the units seen), and a request is made only once its media has arrived, so the final comes
# after it: within [-0.25 s, 60 s] (−0.25 s: the unit that closes a window may end a fraction of
# an AAC frame or a video frame interval before the window's end; 60 s bounds the queueing on
# this 2-core machine).
from datetime import datetime
def t(iso): return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
lags = [t(e["wall_utc"]) - (t(e["media_start_utc"]) + e["media_end"] - e["media_start"])
        for e in ev if e["kind"] == "final"]
assert -0.25 <= min(lags) and max(lags) <= 60.0, (min(lags), max(lags))
print("final made %.2f-%.2f s after its media was received" % (min(lags), max(lags)))
# Every final carries latency_ms: its media complete (the closing unit reached the graph) → its
# release to the sinks, measured on the steady clock; the same 60 s bound.
lat = [e.get("latency_ms") for e in ev if e["kind"] == "final"]
assert all(isinstance(x, (int, float)) and 0 <= x <= 60e3 for x in lat), [x for x in lat if not isinstance(x, (int, float)) or not 0 <= x <= 60e3][:5]
assert not any("latency_ms" in e for e in ev if e["kind"] != "final")
print("latency_ms of %d finals: %.0f-%.0f ms" % (len(lat), min(lat), max(lat)))
streams = {e["stream"] for e in ev if e["kind"] == "final"}
assert {"lobby", "entrance", "dock", "parking"} <= streams, streams
# Stats every metrics.interval_s: one event per stream holding that stream's series only, and
# one (stream "") with the engine's and sinks' series.
stats = [e for e in ev if e["kind"] == "stats"]
assert {e["stream"] for e in stats} == {"", "lobby", "entrance", "dock", "parking"}, stats[:1]
for e in stats:
    for series in e["stats"].values():
        assert all(s["labels"].get("stream") == (e["stream"] or None) for s in series), e
last_stats = {e["stream"]: e["stats"] for e in stats}
assert all(s["rawflow_reconnects_total"][0]["value"] >= 2
           for n, s in last_stats.items() if n), last_stats
# The latency histogram (per stream and task) counted finals.
assert any(s.get("count", 0) > 0 for n, st in last_stats.items() if n
           for s in st.get("rawflow_request_latency_seconds", [])), last_stats.get("lobby")
# Streaming prefill (the config's speech task: streaming_prefill_s) is in use: prompt tokens of
# every speech stream were prefilled while their window was still open.
streamed = {n: sum(x["value"] for x in st.get("rawflow_prompt_tokens_streamed_total", [])
                   if x["labels"]["task"] == "speech")
            for n, st in last_stats.items() if n and n != "dock"}
assert all(v > 0 for v in streamed.values()), streamed
print("prompt tokens prefilled while their window was open:", streamed)
rates = [e["stats"]["rawflow_decode_tokens_per_second"][0]["value"] for e in stats if not e["stream"]]
assert max(rates) > 0, rates
print("decode tokens/s in the stats events:", ["%.1f" % r for r in rates])
print("PASS")
PY
