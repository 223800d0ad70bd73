#!/usr/bin/env bash
# A camera's password never leaves rawflow: `rtsp://user:PASSWORD@…` (written in the file, and
# from ${VAR}) is not in stdout, stderr, the JSONL file, the ZeroMQ messages a real subscriber
# receives, /metrics, `--print-config`, nor in `rawflow batch`'s messages and failed list. The
# camera refuses the connection (nothing listens on its port), so every error path that names the
# input runs.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
source "$RAWFLOW_SOURCE_DIR/tests/e2e/lib.sh"
work=$RAWFLOW_TEST_WORK/redaction
rm -rf "$work" && mkdir -p "$work"
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null
fail() { echo "FAIL: $*"; exit 1; }
cam_port=$(free_port); zmq_port=$(free_port); http_port=$(free_port)
export CAM2_PASSWORD=Env-Secret-77
cat >"$work/cams.yaml" <<YAML
streams:
  - {name: lobby, url: "rtsp://viewer:File-Secret-42@127.0.0.1:$cam_port/live"}
  - {name: door, url: "rtsp://viewer:\${CAM2_PASSWORD}@127.0.0.1:$cam_port/door"}
tasks:
  - {name: speech, kind: transcribe, window_s: 4}
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf}
outputs:
  stdout: {format: text}
  jsonl: {path: $work/results.jsonl}
  zmq: {endpoint: "tcp://127.0.0.1:$zmq_port"}
metrics:
  interval_s: 1
  http: {listen: "127.0.0.1:$http_port"}
YAML
secrets=(File-Secret-42 Env-Secret-77)
clean() {  # file...: none holds a password
  for f in "$@"; do
    for s in "${secrets[@]}"; do ! grep -qF "$s" "$f" || fail "$f shows a password: $(grep -F "$s" "$f" | head -1)"; done
  done
}

echo "== --print-config"
"$RAWFLOW_BIN" run "$work/cams.yaml" --print-config >"$work/print.out" 2>&1
grep -q 'rtsp://\*\*\*@127.0.0.1' "$work/print.out" || fail "the URL is not in the dump"
clean "$work/print.out"

echo "== a run whose cameras refuse: stdout, stderr, JSONL, ZeroMQ, /metrics"
timeout 30 $py "$src/examples/subscriber.py" --endpoint "tcp://127.0.0.1:$zmq_port" --json \
  >"$work/zmq.out" 2>&1 &
sub=$!
"$RAWFLOW_BIN" run "$work/cams.yaml" --set streams.0.reconnect.initial_delay_s=0.2 \
  >"$work/run.out" 2>"$work/run.err" &
pid=$!
for _ in $(seq 100); do  # the errors and stats of a few attempts
  n=$(grep -c '"kind":"error"' "$work/results.jsonl" 2>/dev/null || true)
  [ "${n:-0}" -ge 4 ] && break
  sleep 0.1
done
$py -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$http_port/metrics', timeout=5).read().decode())" \
  >"$work/metrics.out"
sleep 1.5  # a stats round reaches the subscriber
kill -INT $pid; wait $pid || true
kill $sub 2>/dev/null || true; wait $sub 2>/dev/null || true
grep -q '"kind":"error"' "$work/results.jsonl" || fail "no error event: the refusals were not reported"
grep -q 'rtsp://\*\*\*@127.0.0.1' "$work/results.jsonl" || fail "the errors do not name the camera"
grep -q '"kind"' "$work/zmq.out" || fail "the subscriber got nothing"
grep -q 'rawflow_source_up' "$work/metrics.out" || fail "no /metrics"
clean "$work/run.out" "$work/run.err" "$work/results.jsonl" "$work/zmq.out" "$work/metrics.out"

echo "== rawflow batch on URLs with passwords"
printf '%s\n' "rtsp://viewer:File-Secret-42@127.0.0.1:$cam_port/a" >"$work/manifest"
printf 'tasks:\n  - {name: speech, kind: transcribe, window_s: 4}\nengine: {model: %s, mmproj: %s}\noutputs: {stdout: {enabled: false}}\n' \
  "$work/tiny.gguf" "$work/tiny-mmproj.gguf" >"$work/batch.yaml"
set +e
timeout 60 "$RAWFLOW_BIN" batch "$work/batch.yaml" --manifest "$work/manifest" --out "$work/out" \
  --set stream_defaults.kind=file 2>"$work/batch.err"; rc=$?
set -e
[ "$rc" = 3 ] || { cat "$work/batch.err"; fail "batch exit $rc, expected 3"; }
grep -q 'rtsp://\*\*\*@127.0.0.1' "$work/out/failed/0.tsv" || fail "the failed list does not name it"
clean "$work/batch.err" "$work/out/failed/0.tsv" "$work"/out/progress/*.json
echo "PASS"
