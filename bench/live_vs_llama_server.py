#!/usr/bin/env python3
"""Driver of bench/live_vs_llama_server.sh: one configuration (a system and a stream count) on
live RTSP feeds, and its figures as one JSON line.

  rawflow:      `rawflow run` with one transcribe task of --window s windows on every stream
                (streaming prefill on, --piece s), results read from its JSONL output.
  llama-server: what a user would build instead: per stream an ffmpeg that cuts the feed into
                --window s 16 kHz WAV clips (segment muxer), and a client that posts each clip, as
                soon as ffmpeg has closed it, to llama-server's OpenAI-compatible
                /v1/chat/completions (text + input_audio), one thread per stream; the server runs
                with -np = the stream count.

Figures: media seconds transcribed per wall second (whole windows answered in the run / its
length), window end → result latency p50/p95 (rawflow: latency_ms, from the unit that completed
the window reaching the graph; llama-server: from ffmpeg closing the clip to the response), CPU
seconds per media second (the system's processes: rawflow, or llama-server + the ffmpegs +
the client), and whether it kept up (every window of the run answered, none dropped, and the
last third's latency no more than a window above the first third's).
"""
import argparse
import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def cpu_seconds(pid):
    """utime + stime of a process and its waited-for children (/proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def summary(system, n, lat_ms, media_s, wall_s, cpu_s, windows_expected, dropped):
    third = max(1, len(lat_ms) // 3)
    kept_up = (len(lat_ms) >= windows_expected and dropped == 0 and
               statistics.mean(lat_ms[-third:]) <= statistics.mean(lat_ms[:third]) + 1000 * args.window)
    return {"system": system, "streams": n, "windows": len(lat_ms), "expected": windows_expected,
            "dropped": dropped,
            "media_s_per_wall_s": media_s / wall_s,
            "p50_ms": quantile(lat_ms, 0.5) if lat_ms else None,
            "p95_ms": quantile(lat_ms, 0.95) if lat_ms else None,
            "cpu_s_per_media_s": cpu_s / media_s if media_s else None,
            "kept_up": bool(lat_ms) and kept_up}


def run_rawflow(n, urls):
    out = os.path.join(args.work, f"rawflow-n{n}.jsonl")
    if os.path.exists(out):
        os.remove(out)
    cfg = os.path.join(args.work, f"rawflow-n{n}.yaml")
    with open(cfg, "w") as f:
        f.write("version: 1\nstreams:\n")
        for i, u in enumerate(urls):
            f.write(f"  - {{name: cam{i + 1}, url: \"{u}\"}}\n")
        f.write("tasks:\n  - {name: speech, kind: transcribe, window_s: %g, max_new_tokens: %d, "
                "streaming_prefill_s: %g}\n" % (args.window, args.tokens, args.piece))
        f.write(f"engine: {{model: {args.model}, mmproj: {args.mmproj}, max_batch: {2 * n}, "
                "kv_cache_budget_mb: 4096}\n")
        f.write(f"outputs: {{jsonl: {{path: {out}}}}}\n")
    log = open(os.path.join(args.work, f"rawflow-n{n}.log"), "w")
    p = subprocess.Popen([args.rawflow, "run", cfg], stdout=subprocess.DEVNULL, stderr=log)
    start = time.monotonic()
    time.sleep(args.duration)
    cpu = cpu_seconds(p.pid)
    wall = time.monotonic() - start
    p.send_signal(signal.SIGINT)
    p.wait()
    ev = [json.loads(l) for l in open(out)]
    # Windows that ended within the run (the stop closes the last ones short: not counted).
    fin = [e for e in ev if e["kind"] == "final" and e["media_end"] - e["media_start"] >= args.window - 1e-6]
    dropped = sum(e["kind"] == "error" and "dropped" in e.get("error", "") for e in ev)
    lat = [e["latency_ms"] for e in sorted(fin, key=lambda e: (e["media_start"], e["stream"]))]
    media = sum(e["media_end"] - e["media_start"] for e in fin)
    # Expected: the windows every stream completed before the stop, less the first one's start-up.
    expected = n * (int((wall - 3) // args.window) - 1)
    return summary("rawflow", n, lat, media, wall, cpu, expected, dropped)


def run_llama_server(n, urls):
    port = free_port()
    log = open(os.path.join(args.work, f"llama-server-n{n}.log"), "w")
    server = subprocess.Popen([args.llama_server, "-m", args.model, "--mmproj", args.mmproj,
                               "-np", str(n), "-c", str(n * 2048), "-t", str(args.threads),
                               "-tb", str(args.threads), "--host", "127.0.0.1", "--port", str(port),
                               "--temp", "0"], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    break
        except Exception:
            pass
        if server.poll() is not None:
            sys.exit(f"llama-server exited: see {log.name}")
        time.sleep(0.5)
    else:
        sys.exit("llama-server did not become ready")
    cuts, lat, media, lock = [], [], [0.0], threading.Lock()
    stop = threading.Event()
    errors = [0]
    for i, u in enumerate(urls):
        d = os.path.join(args.work, f"clips-n{n}-{i}")
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        cuts.append((d, subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", u, "-vn", "-ac", "1",
             "-ar", "16000", "-f", "segment", "-segment_time", str(args.window),
             "-reset_timestamps", "1", "-segment_list", os.path.join(d, "list.csv"),
             "-segment_list_type", "csv", os.path.join(d, "clip%05d.wav")],
            stdin=subprocess.DEVNULL)))

    def client(d):
        seen = 0
        while not stop.is_set():
            path = os.path.join(d, "list.csv")
            lines = open(path).read().splitlines() if os.path.exists(path) else []
            if len(lines) <= seen:
                time.sleep(0.02)
                continue
            line = lines[seen]
            seen += 1
            closed = time.monotonic()
            name, t0, t1 = line.split(",")[:3]
            length = float(t1) - float(t0)
            if length < args.window - 0.05:  # the first clip may be short (stream start)
                continue
            audio = base64.b64encode(open(os.path.join(d, name), "rb").read()).decode()
            body = {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "Transcribe this audio."},
                {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]}],
                "max_tokens": args.tokens, "temperature": 0}
            req = urllib.request.Request(base + "/v1/chat/completions", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=600) as r:
                    json.load(r)
            except Exception as e:
                with lock:
                    errors[0] += 1
                print(f"llama-server request failed: {e}", file=sys.stderr)
                continue
            with lock:
                lat.append((time.monotonic() - closed) * 1000)
                media[0] += length

    threads = [threading.Thread(target=client, args=(d,), daemon=True) for d, _ in cuts]
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.duration)
    wall = time.monotonic() - start
    cpu = cpu_seconds(server.pid) + sum(cpu_seconds(p.pid) for _, p in cuts) + \
        time.process_time()
    stop.set()
    for _, p in cuts:
        p.terminate()
        p.wait()
    server.terminate()
    try:  # it waits for the clients' open requests; they are not answered any more
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    expected = n * (int((wall - 3) // args.window) - 1)
    return summary("llama-server", n, lat, media[0], wall, cpu, expected, errors[0])


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


ap = argparse.ArgumentParser()
ap.add_argument("system", choices=["rawflow", "llama-server"])
ap.add_argument("--urls", required=True, help="comma-separated RTSP URLs, one per stream")
ap.add_argument("--rawflow")
ap.add_argument("--llama-server")
ap.add_argument("--model", required=True)
ap.add_argument("--mmproj", required=True)
ap.add_argument("--window", type=float, default=10)
ap.add_argument("--piece", type=float, default=1)
ap.add_argument("--tokens", type=int, default=16)
ap.add_argument("--duration", type=float, default=75)
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--work", required=True)
args = ap.parse_args()
urls = args.urls.split(",")
res = (run_rawflow if args.system == "rawflow" else run_llama_server)(len(urls), urls)
print(json.dumps(res))
