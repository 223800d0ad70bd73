#!/usr/bin/env bash
# `rawflow batch` end to end on an archive generated now: MKV (H.264 + PCM), MP4 (MPEG-4 + AAC),
# MPEG-TS (H.264 + AAC), WAV, MP3, Opus-in-MKV and a video without audio, next to a corrupt TS,
# a zero-length file and a text file named .mp4, some in a subdirectory. Checks:
#  - every good input has its JSONL and its stitched transcript (.txt/.srt/.vtt); every bad one is
#    in failed/0.tsv with its reason; the run completes with the documented exit status 3;
#  - DIR/progress/0.json and the progress lines count inputs done and failed, media hours;
#  - a re-run skips finished inputs (counted) and redoes the failed ones (--retries attempts);
#  - kill -9 in the middle, then a re-run: no half-written result, finished inputs not redone, and
#    the final results equal an uninterrupted run's (texts and media ranges per input);
#  - SIGTERM: exit 130, no temporary or partial file, interrupted inputs not listed as failed;
#  - shards 0..2 of 3 cover every input exactly once.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
source "$RAWFLOW_SOURCE_DIR/tests/e2e/lib.sh"
work=$RAWFLOW_TEST_WORK/batch
rm -rf "$work" && mkdir -p "$work/archive/sub"
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null
a=$work/archive
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }
tone="sine=frequency=440:sample_rate=48000:duration=6"
pic="testsrc2=size=320x240:rate=10:duration=6"
ff -f lavfi -i "$pic" -f lavfi -i "$tone" -c:v libx264 -c:a pcm_s16le "$a/one.mkv"
ff -f lavfi -i "$pic" -f lavfi -i "$tone" -c:v mpeg4 -c:a aac "$a/two.mp4"
ff -f lavfi -i "$pic" -f lavfi -i "$tone" -c:v libx264 -c:a aac -f mpegts "$a/sub/three.ts"
ff -f lavfi -i "$tone" -c:a pcm_s16le "$a/four.wav"
ff -f lavfi -i "$tone" -c:a libmp3lame "$a/five.mp3"
ff -f lavfi -i "$tone" -c:a libopus "$a/six.mka"
ff -f lavfi -i "$pic" -c:v libx264 "$a/silent-video.mp4"
head -c 40000 "$a/sub/three.ts" > "$a/sub/cut.ts"
head -c 30000 /dev/urandom > "$a/noise.ts"
: > "$a/empty.wav"
echo "not a video" > "$a/notes.mp4"
cp "$a/four.wav" "$a/readme.txt"  # not a media extension: a directory search leaves it out

cfg=$work/batch.yaml
cat > "$cfg" <<YAML
version: 1
tasks:
  - {name: speech, kind: transcribe, window_s: 4, overlap_s: 1, max_new_tokens: 4}
  - {name: scene, kind: describe, interval_s: 4, frames_per_request: 1, image_budget: 70, max_new_tokens: 4}
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf, threads: 1}
outputs: {stdout: {enabled: false}}  # the per-input files are the output
YAML
batch() { "$RAWFLOW_BIN" batch "$cfg" "$@"; }

echo "== the archive"
set +e
batch "$a" --out "$work/out" 2>"$work/run1.log"; rc=$?
set -e
grep "rawflow batch" "$work/run1.log"
[ "$rc" = 3 ] || { echo "FAIL: exit $rc, expected 3 (some inputs failed)"; tail -5 "$work/run1.log"; exit 1; }
$py - "$work/out" "$a" <<'PY'
import csv, json, os, sys
out, arch = sys.argv[1:]
items = os.listdir(os.path.join(out, "items"))
assert not [f for f in items if f.endswith(".tmp")], items
done = sorted(f.rsplit("-", 1)[0] for f in items if f.endswith(".jsonl"))
# A TS cut short is read as far as it goes (MPEG-TS has no index to tell it is short).
good = ["cut_ts", "five_mp3", "four_wav", "one_mkv", "silent-video_mp4", "six_mka", "three_ts",
        "two_mp4"]
assert done == good, done
for f in items:
    if f.endswith(".jsonl"):
        ev = [json.loads(l) for l in open(os.path.join(out, "items", f))]
        assert ev or f.startswith("cut_ts"), f  # a 40 kB TS may hold less than a window
        assert all(e["kind"] in ("final", "error", "gap") for e in ev), f
        # An input without a stream a task needs is done, and says so in its results.
        errors = " ".join(e["error"] for e in ev if e["kind"] == "error")
        if f.startswith("silent-video"):
            assert "has no audio stream" in errors, (f, errors)
        if f.startswith(("four_wav", "five_mp3", "six_mka")):
            assert "has no video stream" in errors, (f, errors)
        if f.startswith(("one_mkv", "two_mp4")):
            assert "stream" not in errors, (f, errors)
        assert all(e["stream"] == f[:-6] for e in ev), f
        stem = os.path.join(out, "items", f[:-6] + ".speech")
        for ext in (".txt", ".srt", ".vtt"):
            assert os.path.exists(stem + ext), stem + ext
        srt = open(stem + ".srt").read()
        if "silent" not in f:
            assert srt.startswith("1\n00:00:0") and " --> " in srt, (f, srt[:80])
rows = list(csv.DictReader(open(os.path.join(out, "failed", "0.tsv")), delimiter="\t"))
failed = {os.path.relpath(r["input"], arch): r["error"] for r in rows}
print("failed:", failed)
assert sorted(failed) == ["empty.wav", "noise.ts", "notes.mp4"], failed
assert "empty" in failed["empty.wav"] and "notes.mp4" in failed["notes.mp4"], failed
assert all(r["attempts"] == "1" for r in rows), rows
progress = json.load(open(os.path.join(out, "progress", "0.json")))
print("progress:", progress)
assert (progress["inputs"], progress["done"], progress["failed"], progress["remaining"]) == \
    (11, 8, 3, 0), progress
assert progress["media_hours_done"] > 0 and progress["eta_s"] == 0, progress
PY
grep -q '^rawflow batch: \[8+0/11\] 3 failed' "$work/run1.log" ||
  { echo "FAIL: no final progress line"; tail -3 "$work/run1.log"; exit 1; }
grep -q "note on $a/silent-video.mp4: .*has no audio stream" "$work/run1.log" ||
  { echo "FAIL: the video without audio was not reported"; exit 1; }

echo "== an input with no stream any task needs fails"
sed 's/^  - {name: scene.*$//' "$cfg" > "$work/speech-only.yaml"
set +e
"$RAWFLOW_BIN" batch "$work/speech-only.yaml" "$a/silent-video.mp4" "$a/four.wav" \
  --out "$work/speech-only" 2>"$work/speech-only.log"; rc=$?
set -e
[ "$rc" = 3 ] || { echo "FAIL: exit $rc, expected 3"; cat "$work/speech-only.log"; exit 1; }
grep -q "failed $a/silent-video.mp4: .*no audio stream, which this stream's tasks need" \
  "$work/speech-only.log" || { echo "FAIL: no reason given"; cat "$work/speech-only.log"; exit 1; }
grep -q "done $a/four.wav" "$work/speech-only.log" || { echo "FAIL: four.wav not done"; exit 1; }

echo "== a re-run: finished inputs skipped, failed ones retried"
set +e
batch "$a" --out "$work/out" --retries 1 --set engine.threads=2 2>"$work/run2.log"; rc=$?  # another CPU count: same ids
set -e
grep "rawflow batch" "$work/run2.log" | head -1
grep -q "8 done before" "$work/run2.log" || { echo "FAIL: finished inputs were not skipped"; exit 1; }
[ "$rc" = 3 ] || { echo "FAIL: exit $rc on the re-run"; exit 1; }
awk -F'\t' 'NR > 1 && $3 != 2 { bad = 1 } END { exit bad }' "$work/out/failed/0.tsv" ||
  { echo "FAIL: a failed input was not tried twice"; cat "$work/out/failed/0.tsv"; exit 1; }

echo "== kill -9 in the middle, then a re-run"
ref=$work/out
"$RAWFLOW_BIN" batch "$cfg" "$a" --out "$work/killed" --max-active 1 2>"$work/killed1.log" &
pid=$!
for _ in $(seq 1 600); do
  n=$(ls "$work/killed/items" 2>/dev/null | grep -c '\.jsonl$' || true)
  [ "$n" -ge 2 ] && break
  sleep 0.05
done
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
before=$(ls "$work/killed/items" | grep -c '\.jsonl$')
echo "killed with $before inputs finished"
[ "$before" -ge 2 ] && [ "$before" -lt 8 ] || { echo "FAIL: kill landed outside the run ($before)"; exit 1; }
set +e
batch "$a" --out "$work/killed" 2>"$work/killed2.log"; rc=$?
set -e
grep -q "$before done before" "$work/killed2.log" || { echo "FAIL: finished inputs redone"; exit 1; }
$py - "$ref" "$work/killed" <<'PY'
import json, os, sys
def results(d):
    out = {}
    for f in sorted(os.listdir(os.path.join(d, "items"))):
        assert not f.endswith(".tmp"), f
        if f.endswith(".jsonl"):
            ev = [json.loads(l) for l in open(os.path.join(d, "items", f))]
            # Ordered per (input, task): the tasks' finals may interleave differently.
            out[f] = sorted((e["task"], e["media_start"], e["media_end"], e["kind"], e["text"])
                            for e in ev)
    return out
a, b = results(sys.argv[1]), results(sys.argv[2])
assert a.keys() == b.keys(), (a.keys(), b.keys())
for k in a:
    assert a[k] == b[k], k
print("results after kill -9 + re-run equal the uninterrupted run's:", len(a), "inputs")
PY

echo "== the progress on /metrics; SIGTERM (what Slurm and Kubernetes send) stops cleanly"
http_port=$(free_port)
"$RAWFLOW_BIN" batch "$cfg" "$a" --out "$work/term" --max-active 1 \
  --set "metrics.http.listen=127.0.0.1:$http_port" 2>"$work/term.log" &
pid=$!
for _ in $(seq 1 600); do
  [ "$(ls "$work/term/items" 2>/dev/null | grep -c '\.jsonl$' || true)" -ge 1 ] && break
  sleep 0.05
done
$py - "$http_port" <<'PY'
import re, sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
value = lambda state: float(re.search(r'^rawflow_batch_inputs\{shard="0",state="%s"\} (\S+)$' % state,
                                      text, re.M).group(1))
assert value("total") == 11, text
assert value("done") >= 1 and value("done") + value("failed") + value("remaining") == 11, text
assert re.search(r'^rawflow_batch_media_seconds_done\{shard="0"\} [1-9]', text, re.M), text
print("/metrics: %d done, %d remaining" % (value("done"), value("remaining")))
PY
kill -TERM "$pid"
set +e
wait "$pid"; rc=$?
set -e
tail -1 "$work/term.log"
[ "$rc" = 130 ] || { echo "FAIL: exit $rc after SIGTERM, expected 130"; exit 1; }
grep -q "interrupted" "$work/term.log" || { echo "FAIL: no interrupted summary"; exit 1; }
! ls "$work/term/items" | grep -q '\.tmp$' || { echo "FAIL: a temporary file was left"; exit 1; }
# Inputs cut by the stop are neither done nor failed: a re-run does them.
[ "$(tail -n +2 "$work/term/failed/0.tsv" | grep -vc -e empty.wav -e noise.ts -e notes.mp4 || true)" = 0 ] ||
  { echo "FAIL: an interrupted input was listed as failed"; cat "$work/term/failed/0.tsv"; exit 1; }

echo "== three shards cover every input once"
for i in 0 1 2; do
  SLURM_ARRAY_TASK_ID=$i "$RAWFLOW_BIN" batch "$cfg" "$a" --out "$work/sharded" --shard-count 3 \
    2>"$work/shard$i.log" || true
done
$py - "$work/sharded" <<'PY'
import csv, os, sys
d = sys.argv[1]
done = [f for f in os.listdir(os.path.join(d, "items")) if f.endswith(".jsonl")]
failed = []
for i in range(3):
    failed += [r["input"] for r in csv.DictReader(open(os.path.join(d, "failed", f"{i}.tsv")), delimiter="\t")]
print("shards:", len(done), "done,", len(failed), "failed")
assert len(done) == 8 and len(failed) == 3 and len(set(failed)) == 3, (done, failed)
PY
echo "PASS"
