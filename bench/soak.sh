#!/usr/bin/env bash
# Soak with faults (docs/soak.md): `rawflow run` on four RTSP streams from the test server for an
# hour while a fault hits every few minutes on a fixed schedule; rawflow's memory, descriptors,
# threads and counters are sampled, every result is checked off, and a report says whether the
# run stayed flat and whether every gap, drop and request is accounted for.
#
#   RAWFLOW_BIN=build/rawflow bench/soak.sh [--duration 3600] [--fault-every 150] [--sample 5]
#       [--tail 2400] [--work DIR]
#
# Streams (one engine; a transcribe task with 5 s windows and a describe task of 2 frames every
# 10 s on each), each from its own tests/rtsp/rtsp_server.py (H.264 320x240 25 fps + AAC):
#   cam1  RTSP over TCP    fault: the server is killed (SIGKILL) and restarted 3 s later
#   cam2  RTSP over UDP    fault: the server is frozen (SIGSTOP) for 8 s, then resumed (SIGCONT)
#   cam3  RTSP over TCP    fault: the feeder stalls for 5 s (SIGUSR1/SIGUSR2; RTSP stays up)
#   cam4  RTSP over TCP through tests/rtsp/corrupting_proxy.py
#                          fault: a 1 s burst of corrupt RTP payloads
# and the ZeroMQ subscriber (examples/subscriber.py): fault: killed, back 10 s later.
# The faults come in that order, one every --fault-every s from then on.
# Outputs: ZeroMQ with partials + JSONL; /metrics on; stats events every 10 s.
# Every --sample s: VmRSS, VmHWM, threads and open fds of rawflow, and counters from /metrics.
# Report: a row every 5 minutes; over the last --tail s (default 40 minutes) the least-squares
# slopes of RSS, descriptors and threads; request latency p50/p99 per 10 minutes; the accounts of
# requests, gaps, drops and of what the subscribers received. Exit status 0 = flat and accounted
# for, 1 = not, 2 = the soak could not run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
duration=3600 fault_every=150 sample=5 tail_s=2400
work=${TMPDIR:-/tmp}/rawflow-soak
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --fault-every) fault_every=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    --tail) tail_s=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
rawflow=${RAWFLOW_BIN:-$here/build/rawflow}
[ -x "$rawflow" ] || { echo "soak.sh: no rawflow binary at $rawflow (set RAWFLOW_BIN)" >&2; exit 2; }
[ "$tail_s" -lt "$duration" ] || { echo "soak.sh: --tail must be shorter than --duration" >&2; exit 2; }
mkdir -p "$work"
rm -f "$work"/*.out "$work"/*.log "$work"/*.jsonl "$work"/samples.tsv "$work"/faults.tsv

echo "# rawflow soak: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# command: RAWFLOW_BIN=$rawflow $0 --duration $duration --fault-every $fault_every --sample $sample --tail $tail_s"
echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

RAWFLOW_BIN=$rawflow "$here/scripts/make_demo_media.sh" "$work" >/dev/null

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A port server
for cam in cam1 cam2 cam3 cam4; do port[$cam]=$(free_port); done
proxy_port=$(free_port) zmq_port=$(free_port) http_port=$(free_port)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_ready() {  # log what
  for _ in $(seq 100); do grep -q READY "$1" && return 0; sleep 0.1; done
  echo "soak.sh: $2 did not start: $(cat "$1")" >&2; exit 2
}
# Not in a subshell: a server exits when the process that started it does.
start_server() {  # cam
  $py "$here/tests/rtsp/rtsp_server.py" "${port[$1]}" --audio aac >"$work/server_$1.out" 2>&1 &
  server[$1]=$!; pids+=("${server[$1]}")
  wait_ready "$work/server_$1.out" "the RTSP server of $1"
}
subscribers=0
start_subscriber() {
  subscribers=$((subscribers + 1))
  $py "$here/examples/subscriber.py" --endpoint "tcp://127.0.0.1:$zmq_port" --json \
    >"$work/subscriber-$subscribers.jsonl" 2>>"$work/subscriber.log" &
  subscriber=$!; pids+=("$subscriber")
}
for cam in cam1 cam2 cam3 cam4; do start_server $cam; done
$py "$here/tests/rtsp/corrupting_proxy.py" "$proxy_port" "${port[cam4]}" >"$work/proxy.out" 2>&1 &
proxy=$!; pids+=("$proxy")
wait_ready "$work/proxy.out" "the corrupting proxy"
start_subscriber

cat >"$work/soak.yaml" <<YAML
version: 1
stream_defaults:
  reconnect: {initial_delay_s: 1, max_delay_s: 4}
  watchdog: {open_timeout_s: 10, read_timeout_s: 3}
  queue: {max_pending_requests: 4}
streams:
  - {name: cam1, url: "rtsp://127.0.0.1:${port[cam1]}/live"}
  - {name: cam2, url: "rtsp://127.0.0.1:${port[cam2]}/live", rtsp_transport: udp}
  - {name: cam3, url: "rtsp://127.0.0.1:${port[cam3]}/live"}
  - {name: cam4, url: "rtsp://127.0.0.1:$proxy_port/live"}
tasks:
  - {name: speech, kind: transcribe, window_s: 5, max_new_tokens: 16}
  - {name: scene, kind: describe, interval_s: 10, frames_per_request: 2, image_budget: 70, max_new_tokens: 16}
engine: {model: tiny.gguf, mmproj: tiny-mmproj.gguf, max_batch: 4, kv_cache_budget_mb: 256}
outputs:
  zmq: {endpoint: "tcp://127.0.0.1:$zmq_port", partials: true}
  jsonl: {path: results.jsonl}
metrics:
  http: {listen: "127.0.0.1:$http_port"}
  interval_s: 10
YAML

"$rawflow" run "$work/soak.yaml" >"$work/run.out" 2>"$work/run.log" &
run=$!; pids+=("$run")

# ---- the sampler: one row every $sample s until rawflow exits.
$py - "$run" "$http_port" "$sample" "$work/samples.tsv" <<'PY' &
import os, sys, time, urllib.request
pid, port, every, out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
counters = {"requests": "rawflow_request_latency_seconds_count",
            "dropped_requests": 'rawflow_dropped_total{unit="request"',
            "dropped_packets": 'rawflow_dropped_total{unit="packet"',
            "reconnects": "rawflow_reconnects_total", "gaps": "rawflow_gaps_total",
            "gap_s": "rawflow_gap_seconds_total", "audio_in": "rawflow_audio_frames_in_total",
            "audio_used": "rawflow_audio_frames_used_total", "published": "rawflow_sink_published_total",
            "sink_dropped": "rawflow_sink_dropped_total"}
cols = ["t_s", "wall", "rss_mib", "hwm_mib", "threads", "fds"] + list(counters)
def status():
    d = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        d[k] = v.strip()
    return d
def metrics():
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=2).read().decode()
    except Exception:
        return None
    sums = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        value = float(line.rsplit(" ", 1)[1])
        name = line.split("{")[0].split(" ")[0]
        sums[name] = sums.get(name, 0.0) + value
        if name == "rawflow_dropped_total":  # by unit: requests and refused packets apart
            unit = line.split('unit="')[1].split('"')[0]
            key = 'rawflow_dropped_total{unit="%s"' % unit
            sums[key] = sums.get(key, 0.0) + value
    return sums
t0 = time.time()
with open(out, "w") as f:
    f.write("\t".join(cols) + "\n")
    while True:
        try:
            st = status()
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except (FileNotFoundError, ProcessLookupError):
            break
        m = metrics()
        if m is not None:
            kib = lambda k: int(st[k].split()[0]) / 1024
            row = [time.time() - t0, time.time(), kib("VmRSS"), kib("VmHWM"), int(st["Threads"]), fds]
            row += [m.get(name, 0.0) for name in counters.values()]
            f.write("\t".join("%.3f" % v if isinstance(v, float) else str(v) for v in row) + "\n")
            f.flush()
        time.sleep(max(0.0, every - (time.time() - t0) % every))
PY
sampler=$!; pids+=("$sampler")

# ---- faults on schedule, until the duration is over. faults.tsv: one row per fault with its
# wall-clock start and end (epoch seconds), for the accounts.
printf 'n\tkind\tstream\tstart\tend\n' >"$work/faults.tsv"
kinds=(kill freeze stall corrupt away)
start=$SECONDS n=0
fault() {  # kind
  local t0 t1 what
  t0=$(date +%s.%N)
  case $1 in
    kill)
      kill -9 "${server[cam1]}" 2>/dev/null || true; wait "${server[cam1]}" 2>/dev/null || true
      sleep 3; start_server cam1; what="cam1: server killed, restarted 3 s later" ;;
    freeze)
      kill -STOP "${server[cam2]}"; sleep 8; kill -CONT "${server[cam2]}"
      what="cam2: server frozen for 8 s" ;;
    stall)
      kill -USR1 "${server[cam3]}"; sleep 5; kill -USR2 "${server[cam3]}"
      what="cam3: feeder stalled for 5 s" ;;
    corrupt)
      kill -USR1 "$proxy"; sleep 1.2; what="cam4: 1 s of corrupt RTP payloads" ;;
    away)
      kill -9 "$subscriber" 2>/dev/null || true; wait "$subscriber" 2>/dev/null || true
      sleep 10; start_subscriber; what="subscriber gone for 10 s" ;;
  esac
  t1=$(date +%s.%N)
  local stream=${what%%:*}; [ "$1" = away ] && stream=-
  printf '%d\t%s\t%s\t%s\t%s\n' "$n" "$1" "$stream" "$t0" "$t1" >>"$work/faults.tsv"
  echo "# $((SECONDS - start)) s: $what"
}
next=$fault_every
while [ $((SECONDS - start)) -lt "$duration" ]; do
  kill -0 $run 2>/dev/null || { echo "soak.sh: rawflow exited early:"; tail -20 "$work/run.log"; exit 2; }
  if [ $((SECONDS - start)) -ge "$next" ] && [ $((SECONDS - start + 15)) -lt "$duration" ]; then
    fault "${kinds[$((n % ${#kinds[@]}))]}"
    n=$((n + 1)) next=$((next + fault_every))
  fi
  sleep 1
done
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

kill "$sampler"; wait "$sampler" 2>/dev/null || true  # the shutdown is not part of the run
kill -INT $run
for _ in $(seq 300); do kill -0 $run 2>/dev/null || break; sleep 0.1; done
kill -0 $run 2>/dev/null && { echo "soak.sh: rawflow did not stop on SIGINT within 30 s"; exit 2; }
rc=0; wait $run || rc=$?
echo "# rawflow: exit status $rc; $(tail -1 "$work/run.log")"
[ $rc = 0 ] || exit 2
sleep 1  # the subscriber takes the last messages

$py "$here/bench/soak_report.py" --work "$work" --tail "$tail_s"
