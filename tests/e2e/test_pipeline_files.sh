#!/usr/bin/env bash
# `rawflow run` on files, end to end: real FFmpeg decoding of encoded media, the oneTBB graph, the
# engine (a synthesized tiny model: random weights, so the text is not checked, only its structure),
# the JSONL / stdout / ZeroMQ outputs with a real subscriber. Checks:
#  - every 640-sample frame of the input is used exactly once (window = hop), nothing dropped;
#  - frames shared by several tasks or overlapping windows are counted used once (the summary
#    reads the exported rawflow_*_frames_*_total counters);
#  - results carry the media ranges of the windows, in order, one final per request;
#  - configs/demo.yaml and configs/archive-bulk.yaml run (paths overridden with --set);
#  - four streams share one engine and forwards hold more than one sequence.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
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
seq=$(sed -n 's/.*up to \([0-9]*\) sequences per forward.*/\1/p' "$work/archive.log")
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
# scene + scene5 = 9 frames in requests for the 6 used; speech windows start every 5 s.
assert finals == {"ask": 3, "speech": 6, "scene": 3, "scene5": 6}, finals
PY

echo "== four streams, one engine, ZeroMQ to a real subscriber"
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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
YAML
$py "$src/examples/subscriber.py" --endpoint "tcp://127.0.0.1:$port" --json --finals-only \
  --topic cam --count 12 >"$work/sub.out" 2>&1 &
sub=$!
sleep 1  # the subscriber connects and retries until rawflow binds; results come seconds later
"$RAWFLOW_BIN" run "$work/four.yaml" 2>"$work/four.log" || { cat "$work/four.log"; exit 1; }
tail -1 "$work/four.log"
( sleep 20; kill $sub 2>/dev/null ) & watchdog=$!
wait $sub || { echo "FAIL: subscriber did not get 12 finals"; cat "$work/sub.out"; exit 1; }
kill $watchdog 2>/dev/null || true
$py - "$work/sub.out" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
streams = {}
for e in ev:
    streams.setdefault(e["stream"], []).append(e["media_start"])
print({k: v for k, v in sorted(streams.items())})
assert sorted(streams) == ["cam1", "cam2", "cam3", "cam4"], streams
for v in streams.values():
    assert v == sorted(v) == [0.0, 10.0, 20.0], v  # per stream, in media order
PY
seq=$(sed -n 's/.*up to \([0-9]*\) sequences per forward.*/\1/p' "$work/four.log")
[ "$seq" -ge 2 ] || { echo "FAIL: four streams never shared a forward ($seq)"; exit 1; }
echo "PASS"
