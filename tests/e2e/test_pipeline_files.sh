#!/usr/bin/env bash
# `rawflow run` on files, end to end: real FFmpeg decoding of encoded media, the oneTBB graph, the
# engine (a synthesized tiny model: random weights, so the text is not checked, only its structure),
# the JSONL / stdout / ZeroMQ outputs with a real subscriber. Checks:
#  - every 640-sample frame of the input is used exactly once (window = hop), nothing dropped;
#  - frames shared by several tasks or overlapping windows are counted used once (the summary
#    reads the exported rawflow_*_frames_*_total counters);
#  - results carry the media ranges of the windows, in order, one final per request;
#  - configs/demo.yaml and configs/archive-bulk.yaml run (paths overridden with --set);
#  - a corrupt file: undecodable packets are skipped, counted (rawflow_dropped_total) and reported
#    in grouped error events, the media around them is still used, per-stream stats are published;
#  - requests whose deadline passes before their first forward are counted dropped (deadline);
#  - four streams share one engine and forwards hold more than one sequence.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
source "$RAWFLOW_SOURCE_DIR/tests/e2e/lib.sh"
work=$RAWFLOW_TEST_WORK/pipeline_files
rm -rf "$work" && mkdir -p "$work"
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null
# A PCM WAV whose length is not a multiple of 640 samples: 7.37 s at 16 kHz = 117920 samples,
# ceil(117920 / 640) = 185 frames (the last one zero-padded by the framer).
ffmpeg -loglevel error -y -f lavfi -i "sine=frequency=300:sample_rate=16000:duration=7.37" \
  -c:a pcm_s16le "$work/odd.wav"

summary_field() {  # log key: "audio frames X in / Y used" -> X Y
  sed -n 's/.*audio frames \([0-9]*\) in \/ \([0-9]*\) used.*/\1 \2/p' "$1"
}
video_field() {  # log key: "video frames X in / Y used" -> X Y
  sed -n 's/.*video frames \([0-9]*\) in \/ \([0-9]*\) used.*/\1 \2/p' "$1"
}

echo "== configs/demo.yaml"
"$RAWFLOW_BIN" run "$src/configs/demo.yaml" \
  --set "streams.0.url=$work/demo.mkv" --set "engine.model=$work/tiny.gguf" \
  --set "engine.mmproj=$work/tiny-mmproj.gguf" --set "outputs.jsonl.path=$work/demo.jsonl" \
  >"$work/demo.out" 2>"$work/demo.log" || { cat "$work/demo.log"; exit 1; }
tail -1 "$work/demo.log"
read -r fin fused < <(summary_field "$work/demo.log")
[ "$fin" = 750 ] && [ "$fused" = 750 ] || { echo "FAIL: 30 s = 750 frames expected, got $fin in / $fused used"; exit 1; }
$py - "$work/demo.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
finals = [e for e in ev if e["kind"] == "final"]
for e in ev:
    for k in ("schema", "stream", "task", "request_id", "kind", "text", "media_start", "media_end",
              "wall_utc", "model", "tokens", "timing_ms"):
        assert k in e, (k, e)
by_task = {}
for e in finals:
    by_task.setdefault(e["task"], []).append((e["media_start"], e["media_end"]))
print("finals by task:", by_task)
assert sorted(by_task) == ["scene", "speech"], by_task
assert by_task["speech"] == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)], by_task["speech"]
assert [s for s, _ in by_task["scene"]] == [0.0, 10.0, 20.0], by_task["scene"]
assert len({e["request_id"] for e in finals}) == len(finals)
assert not any("media_start_utc" in e for e in ev)  # files have no wall clock
# The stream's end: once, complete, after every final of the stream (before the closing stats).
ends = [i for i, e in enumerate(ev) if e["kind"] == "end"]
assert len(ends) == 1 and ev[ends[0]]["stream"] == "demo" and ev[ends[0]]["complete"] is True, ends
assert all(i < ends[0] for i, e in enumerate(ev) if e["kind"] in ("final", "error", "partial"))
PY
grep -q '^\[demo/speech 0.0' "$work/demo.out" || { echo "FAIL: no stdout result line"; cat "$work/demo.out"; exit 1; }

echo "== configs/archive-bulk.yaml (six file streams, never drop)"
args=(--set "engine.model=$work/tiny.gguf" --set "engine.mmproj=$work/tiny-mmproj.gguf"
      --set "outputs.jsonl.path=$work/archive.jsonl" --set "outputs.stdout.format=json"
      --set "tasks.0.window_s=5" --set "tasks.0.overlap_s=0" --set "tasks.1.interval_s=10"
      --set "engine.max_batch=4" --set "engine.kv_cache_budget_mb=512")
for i in 0 1 2 3 5; do args+=(--set "streams.$i.url=$work/demo.mkv"); done
args+=(--set "streams.4.url=$work/odd.wav")
"$RAWFLOW_BIN" run "$src/configs/archive-bulk.yaml" "${args[@]}" >"$work/archive.out" 2>"$work/archive.log" ||
  { cat "$work/archive.log"; exit 1; }
tail -1 "$work/archive.log"
read -r fin fused < <(summary_field "$work/archive.log")
expect=$((5 * 750 + 185))
[ "$fin" = "$expect" ] && [ "$fused" = "$expect" ] ||
  { echo "FAIL: expected $expect frames in and used, got $fin / $fused"; exit 1; }
grep -q 'results, 0 errors' "$work/archive.log" || { echo "FAIL: errors in the archive run"; exit 1; }
seq=$(sed -n 's/.*sequences per forward (up to \([0-9]*\)).*/\1/p' "$work/archive.log")
[ "$seq" -ge 2 ] || { echo "FAIL: never more than one sequence per forward ($seq)"; exit 1; }
echo "sequences per forward: up to $seq"

echo "== frames shared by tasks and by overlapping windows are used once"
# Audio: overlapping transcription windows (hop 5 < window 10) plus a prompt over the last 3 s of
# each 10 s, listed first so that its requests are made before the transcription's earlier ones.
# Video: one frame every 5 s; `scene5` uses all 6, `scene` 3 of the same ones.
cat >"$work/shared.yaml" <<YAML
version: 1
streams:
  - {name: shared, url: $work/demo.mkv, video: {sample_fps: 0.2}}
tasks:
  - {name: ask, kind: prompt, prompt: 'What was said?', interval_s: 10, frames_per_request: 0,
     include_audio_s: 3, max_new_tokens: 4}
  - {name: speech, kind: transcribe, window_s: 10, hop_s: 5, max_new_tokens: 4}
  - {name: scene, kind: describe, interval_s: 10, image_budget: 70, max_new_tokens: 4}
  - {name: scene5, kind: describe, interval_s: 5, image_budget: 70, max_new_tokens: 4}
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf, max_batch: 4}
outputs:
  jsonl: {path: $work/shared.jsonl}
YAML
"$RAWFLOW_BIN" run "$work/shared.yaml" 2>"$work/shared.log" || { cat "$work/shared.log"; exit 1; }
tail -1 "$work/shared.log"
read -r fin fused < <(summary_field "$work/shared.log")
[ "$fin" = 750 ] && [ "$fused" = 750 ] ||
  { echo "FAIL: audio: 750 frames in and used once expected, got $fin in / $fused used"; exit 1; }
read -r vin vused < <(video_field "$work/shared.log")
[ "$vin" = 6 ] && [ "$vused" = 6 ] ||
  { echo "FAIL: video: 6 frames in and used once expected, got $vin in / $vused used"; exit 1; }
$py - "$work/shared.jsonl" <<'PY'
import json, sys
finals = {}
for e in map(json.loads, open(sys.argv[1])):
    if e["kind"] == "final":
        finals[e["task"]] = finals.get(e["task"], 0) + 1
print("finals by task:", finals)
# scene + scene5 = 9 frames in requests for the 6 used; speech windows start every 5 s: [0, 10)
# .. [20, 30), and the end of the file makes no [25, 30), all of it in [20, 30) already.
assert finals == {"ask": 3, "speech": 5, "scene": 3, "scene5": 6}, finals
PY

echo "== streaming prefill: each window's audio prefilled in 1 s pieces gives the same transcripts"
# The same run with the overlapping speech windows' audio sent ahead as it is read (two windows
# open at once). Whether a piece is prefilled before its window closes depends on timing (a file
# is read faster than real time; tests/e2e/test_pipeline_rtsp.sh checks that it is on a live
# stream); the transcripts must not depend on it.
"$RAWFLOW_BIN" run "$work/shared.yaml" --set "tasks.1.streaming_prefill_s=1" \
  --set "outputs.jsonl.path=$work/streamed.jsonl" 2>"$work/streamed.log" || { cat "$work/streamed.log"; exit 1; }
tail -1 "$work/streamed.log"
$py - "$work/shared.jsonl" "$work/streamed.jsonl" <<'PY'
import json, sys
def finals(path):
    return {(e["task"], e["media_start"]): (e["text"], e["tokens"])
            for e in map(json.loads, open(path)) if e["kind"] == "final"}
whole, streamed = finals(sys.argv[1]), finals(sys.argv[2])
assert whole == streamed, [(k, whole.get(k), streamed.get(k)) for k in set(whole) | set(streamed)
                           if whole.get(k) != streamed.get(k)]
print("%d finals identical, %d of them transcripts" % (len(whole), sum(k[0] == "speech" for k in whole)))
PY

echo "== a corrupt file: undecodable packets are skipped, counted and reported; the run goes on"
ffmpeg -loglevel error -y -i "$work/demo.mkv" -c:v copy -c:a aac -b:a 64k "$work/demo.ts"
$py - "$work/demo.ts" "$work/corrupt.ts" <<'PY'
import random, sys
d = bytearray(open(sys.argv[1], "rb").read())
n, r = len(d) // 188, random.Random(7)
# Scramble the payloads (not the 4-byte headers) of every third TS packet in the middle fifth.
for i in range(n * 2 // 5, n * 3 // 5, 3):
    d[i * 188 + 4:(i + 1) * 188] = bytes(r.randrange(256) for _ in range(184))
open(sys.argv[2], "wb").write(d)
PY
cat >"$work/corrupt.yaml" <<YAML
version: 1
streams:
  - {name: bad, url: $work/corrupt.ts}
tasks:
  - {name: speech, kind: transcribe, window_s: 10, max_new_tokens: 4}
  - {name: scene, kind: describe, interval_s: 10, image_budget: 70, max_new_tokens: 4}
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf}
outputs:
  jsonl: {path: $work/corrupt.jsonl}
metrics: {interval_s: 1}
YAML
"$RAWFLOW_BIN" run "$work/corrupt.yaml" 2>"$work/corrupt.log" || { tail -5 "$work/corrupt.log"; exit 1; }
tail -1 "$work/corrupt.log"
$py - "$work/corrupt.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
errors = [e["error"] for e in ev if e["kind"] == "error"]
reported = sum(int(m.split(": ")[1].split()[0]) for m in errors if "undecodable packet" in m)
finals = [e for e in ev if e["kind"] == "final"]
stats = [e for e in ev if e["kind"] == "stats" and e["stream"] == "bad"]
assert stats, "no stats event of the stream"
last = {tuple(sorted(s["labels"].items())): s["value"]
        for s in stats[-1]["stats"]["rawflow_dropped_total"]}
counted = last[(("reason", "decode_error"), ("stream", "bad"), ("unit", "packet"))]
print("decode errors: %d reported in %d error events, %d counted; %d finals" %
      (reported, len(errors), counted, len(finals)))
assert reported > 0 and counted == reported, (reported, counted)
# Reports are grouped (kDecodeErrorReportS), not one event per packet.
assert len(errors) < reported, errors
# Media on both sides of the damage was still described and transcribed.
assert {e["task"] for e in finals} == {"speech", "scene"}, finals
assert min(e["media_start"] for e in finals) == 0.0 and max(e["media_end"] for e in finals) > 25
depths = stats[-1]["stats"]["rawflow_queue_depth"]
assert sorted(s["labels"]["queue"] for s in depths) == ["projection", "requests", "windows"]
assert all(s["value"] == 0 for s in depths), depths  # drained at the end
# The engine's own events: a run shorter than metrics.interval_s still gets its tokens/s (in its
# last event); a longer one (ThreadSanitizer's) has it in the intervals it decoded in, and its last
# event may rightly read 0 when the last interval decoded nothing.
engine = [e["stats"] for e in ev if e["kind"] == "stats" and e["stream"] == ""]
rates = [s["rawflow_decode_tokens_per_second"][0]["value"] for s in engine]
assert max(rates) > 0, rates
assert engine[-1]["rawflow_sequences_per_forward"][0]["count"] > 0, engine[-1]
PY

echo "== deadlines shorter than any request: each one is an error event and counted dropped"
# 1 µs: a request is framed, embedded and queued in more than that, so none is ever admitted (with
# 1 ms one was, now and then, when the engine was idle and the path quick: it then expired
# while running, which is not a drop).
rc=0
"$RAWFLOW_BIN" run "$work/corrupt.yaml" --set "streams.0.url=$work/demo.mkv" \
  --set "tasks.0.deadline_s=0.000001" --set "tasks.1.deadline_s=0.000001" \
  --set "outputs.jsonl.path=$work/deadline.jsonl" 2>"$work/deadline.log" || rc=$?
tail -1 "$work/deadline.log"
# A run in which every request failed exits 1 (cli/cmd_run.cpp).
[ $rc = 1 ] || { echo "FAIL: exit status $rc, expected 1 (no request succeeded)"; exit 1; }
$py - "$work/deadline.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
expired = [e for e in ev if e["kind"] == "error" and e["task"]]
assert len(expired) == 6, expired
for e in expired:  # which request of which stream, and why
    assert e["error"].startswith("stream `bad`, request %d (task `%s`, media " % (e["request_id"], e["task"])) \
        and e["error"].endswith("): the deadline of 1e-06 s passed before its first forward"), e["error"]
stats = [e for e in ev if e["kind"] == "stats" and e["stream"] == "bad"][-1]["stats"]
dropped = {s["labels"]["reason"]: s["value"] for s in stats["rawflow_dropped_total"]}
assert dropped == {"queue_full": 0, "deadline": 6, "shutdown": 0, "decode_error": 0}, dropped
print("dropped:", dropped)
PY

echo "== four streams, one engine, ZeroMQ to a real subscriber"
port=$(free_port)
cat >"$work/four.yaml" <<YAML
version: 1
streams:
  - {name: cam1, url: $work/demo.mkv}
  - {name: cam2, url: $work/demo.mkv}
  - {name: cam3, url: $work/demo.mkv}
  - {name: cam4, url: $work/demo.mkv}
tasks:
  - {name: speech, kind: transcribe, window_s: 10, max_new_tokens: 16}
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf, max_batch: 4}
outputs:
  zmq: {endpoint: "tcp://127.0.0.1:$port", partials: true}
metrics: {interval_s: 0}  # no stats events: the subscribers count 12 finals and 4 ends
YAML
# Both example subscribers (examples/), Python and C++, on the same publisher.
cxx_sub=${RAWFLOW_SUBSCRIBER_BIN:?set by CTest: the examples/subscriber.cpp build}
$py "$src/examples/subscriber.py" --endpoint "tcp://127.0.0.1:$port" --json --finals-only \
  --topic cam --count 16 >"$work/sub.out" 2>&1 &
sub=$!
"$cxx_sub" --endpoint "tcp://127.0.0.1:$port" --json --finals-only --topic cam --count 16 \
  >"$work/sub_cxx.out" 2>&1 &
sub_cxx=$!
sleep 1  # the subscribers connect and retry until rawflow binds; results come seconds later
"$RAWFLOW_BIN" run "$work/four.yaml" 2>"$work/four.log" || { cat "$work/four.log"; exit 1; }
tail -1 "$work/four.log"
( sleep 20; kill $sub $sub_cxx 2>/dev/null ) & watchdog=$!
wait $sub || { echo "FAIL: subscriber.py did not get 12 finals and 4 ends"; cat "$work/sub.out"; exit 1; }
wait $sub_cxx || { echo "FAIL: rawflow_subscriber did not get 12 finals and 4 ends"; cat "$work/sub_cxx.out"; exit 1; }
kill $watchdog 2>/dev/null || true
$py - "$work/sub.out" "$work/sub_cxx.out" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
# The C++ subscriber printed the same objects (it re-serializes them: compare parsed).
assert [json.loads(l) for l in open(sys.argv[2])] == ev, "the two subscribers differ"
streams = {}
for e in ev:
    if e["kind"] == "final":
        streams.setdefault(e["stream"], []).append(e["media_start"])
# Each stream's end comes after its three finals.
for name in ("cam1", "cam2", "cam3", "cam4"):
    mine = [e["kind"] for e in ev if e["stream"] == name]
    assert mine == ["final"] * 3 + ["end"], (name, mine)
print({k: v for k, v in sorted(streams.items())})
assert sorted(streams) == ["cam1", "cam2", "cam3", "cam4"], streams
for v in streams.values():
    assert v == sorted(v) == [0.0, 10.0, 20.0], v  # per stream, in media order
PY
seq=$(sed -n 's/.*sequences per forward (up to \([0-9]*\)).*/\1/p' "$work/four.log")
[ "$seq" -ge 2 ] || { echo "FAIL: four streams never shared a forward ($seq)"; exit 1; }

echo "== a file that cannot be opened, with no stdout output: the reason is on stderr"
set +e
"$RAWFLOW_BIN" run "$src/configs/demo.yaml" \
  --set "streams.0.url=$work/missing.mkv" --set "engine.model=$work/tiny.gguf" \
  --set "engine.mmproj=$work/tiny-mmproj.gguf" --set "outputs.jsonl.path=$work/missing.jsonl" \
  --set "outputs.stdout.enabled=false" >"$work/missing.out" 2>"$work/missing.log"; rc=$?
set -e
[ "$rc" = 1 ] || { echo "FAIL: exit $rc, expected 1"; cat "$work/missing.log"; exit 1; }
grep -q "^rawflow run: \[demo error\] .*missing.mkv: not found" "$work/missing.log" ||
  { echo "FAIL: the reason is not on stderr"; cat "$work/missing.log"; exit 1; }
grep -q "^rawflow run: \[demo end, incomplete\]" "$work/missing.log" ||
  { echo "FAIL: no incomplete end on stderr"; cat "$work/missing.log"; exit 1; }
[ ! -s "$work/missing.out" ] || { echo "FAIL: stdout was written"; exit 1; }
echo "PASS"
