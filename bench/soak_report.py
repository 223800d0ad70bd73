#!/usr/bin/python3
"""The report of bench/soak.sh: memory, descriptors and threads over time and their slopes over the
last --tail seconds, request latency per 10 minutes, and the accounts of requests, gaps, drops and
of what the ZeroMQ subscribers received (docs/soak.md says what each verdict means).

    soak_report.py --work DIR [--tail 2400]

Reads DIR/samples.tsv (the sampler), DIR/faults.tsv (the fault schedule as run), DIR/results.jsonl
(rawflow's JSONL output: every event) and DIR/subscriber-*.jsonl (what each subscriber got).
Exit status 0 when flat and everything is accounted for, 1 otherwise.
"""
import argparse
import datetime
import glob
import json
import math
import os
import statistics
import sys

RSS_SLOPE_MAX = 0.1  # MiB per minute over the tail (a leak of ~1.7 kB/s, 144 MiB a day)
P99_GROWTH_MAX = 0.25  # p99's least-squares growth over the tail, as a fraction of its median
GAP_AFTER_FAULT_S = 30  # a gap event belongs to a fault of its stream that ended this long before
AWAY_MARGIN_S = (0.5, 3.0)  # an event missed by the subscribers from just before it left to this
                            # long after it came back (connect + subscription) is accounted for


def epoch(iso):
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def read_tsv(path):
    lines = [l for l in open(path).read().split("\n") if l]
    cols = lines[0].split("\t")
    return [dict(zip(cols, l.split("\t"))) for l in lines[1:]]


def slope(xs, ys):
    """Least-squares slope, its standard error and the residual standard deviation."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    res = [y - (my + b * (x - mx)) for x, y in zip(xs, ys)]
    sd = math.sqrt(sum(r * r for r in res) / max(1, len(xs) - 2))
    return b, sd / math.sqrt(sxx), sd


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--tail", type=float, default=2400)
    args = p.parse_args()
    w = args.work
    samples = [{k: float(v) for k, v in r.items()} for r in read_tsv(os.path.join(w, "samples.tsv"))]
    faults = [dict(r, start=float(r["start"]), end=float(r["end"])) for r in read_tsv(os.path.join(w, "faults.tsv"))]
    events = [json.loads(l) for l in open(os.path.join(w, "results.jsonl")) if l.strip()]
    received = []
    for path in sorted(glob.glob(os.path.join(w, "subscriber-*.jsonl"))):
        received += [json.loads(l) for l in open(path) if l.strip()]
    if len(samples) < 10:
        print("soak: only %d samples; nothing to judge" % len(samples))
        return 2
    t_wall0 = samples[0]["wall"] - samples[0]["t_s"]
    t_end = samples[-1]["t_s"]
    ok = True

    # ---- over time
    print("\n%6s %8s %8s %7s %4s %8s %7s %7s %10s %5s %9s %9s" % (
        "t (s)", "RSS MiB", "peak", "threads", "fds", "requests", "dropped", "bad pkt",
        "reconnects", "gaps", "published", "sink drop"))
    next_t = 0.0
    for r in samples:
        if r["t_s"] + 1e-6 >= next_t or r is samples[-1]:
            print("%6.0f %8.1f %8.1f %7d %4d %8d %7d %7d %10d %5d %9d %9d" % (
                r["t_s"], r["rss_mib"], r["hwm_mib"], r["threads"], r["fds"], r["requests"],
                r["dropped_requests"], r["dropped_packets"], r["reconnects"], r["gaps"],
                r["published"], r["sink_dropped"]))
            next_t = r["t_s"] - r["t_s"] % 300 + 300

    tail = [r for r in samples if r["t_s"] >= t_end - args.tail]
    minutes = (tail[-1]["t_s"] - tail[0]["t_s"]) / 60
    print("\nover the last %.0f min (%d samples, t = %.0f–%.0f s):" % (
        minutes, len(tail), tail[0]["t_s"], tail[-1]["t_s"]))
    xs = [r["t_s"] / 60 for r in tail]
    for key, unit, limit in (("rss_mib", "MiB", RSS_SLOPE_MAX), ("fds", "fds", 1 / minutes),
                             ("threads", "threads", 1 / minutes)):
        b, se, sd = slope(xs, [r[key] for r in tail])
        flat = b <= limit
        ok &= flat
        print("  %-8s %.1f → %.1f (min %.1f, max %.1f); slope %+.4f %s/min ± %.4f (standard "
              "error; residual sd %.2f); limit %.4f: %s" % (
                  key, tail[0][key], tail[-1][key], min(r[key] for r in tail),
                  max(r[key] for r in tail), b, unit, se, sd, limit, "flat" if flat else "GROWS"))

    # ---- latency: a final's latency_ms (its media complete → released to the sinks, measured by
    # rawflow on the steady clock); for builds before latency_ms, its wall clock minus the wall
    # clock at which the end of its media arrived (estimated from media_start_utc).
    print("\nrequest latency (final − arrival of the window's last media), per 10 minutes:")
    blocks = {}
    for e in events:
        if e["kind"] != "final":
            continue
        if "latency_ms" in e:
            lat = e["latency_ms"] / 1e3
        elif e.get("media_start_utc"):
            lat = epoch(e["wall_utc"]) - (epoch(e["media_start_utc"]) + e["media_end"] - e["media_start"])
        else:
            continue
        b = int((epoch(e["wall_utc"]) - t_wall0) // 600)
        blocks.setdefault(b, {}).setdefault(e["task"], []).append(lat)
    tasks = sorted({t for v in blocks.values() for t in v})
    print("  %-9s" % "minutes" + "".join("  %-26s" % ("%s p50 / p99 (n)" % t) for t in tasks))
    p99_tail = []
    for b in sorted(blocks):
        cells = []
        for t in tasks:
            v = blocks[b].get(t, [])
            cells.append("  %-26s" % ("%.2f / %.2f s (%d)" % (quantile(v, 0.5), quantile(v, 0.99), len(v))))
        print("  %-9s" % ("%d–%d" % (b * 10, b * 10 + 10)) + "".join(cells))
        all_v = [x for v in blocks[b].values() for x in v]
        if b * 600 >= t_end - args.tail and (b + 1) * 600 <= t_end + 1:
            p99_tail.append((b * 10 + 5, quantile(all_v, 0.99)))
    if len(p99_tail) >= 2:
        bp, _, _ = slope([x for x, _ in p99_tail], [y for _, y in p99_tail])
        med = statistics.median(y for _, y in p99_tail)
        growth = bp * minutes
        flat = growth <= P99_GROWTH_MAX * med
        ok &= flat
        print("  p99 of all tasks over the tail's whole 10-minute blocks: %s; growth %+.2f s over "
              "%.0f min against a median of %.2f s (limit %.0f %%): %s" % (
                  ", ".join("%.2f" % y for _, y in p99_tail), growth, minutes, med,
                  100 * P99_GROWTH_MAX, "flat" if flat else "GROWS"))

    # ---- requests: ids are dense from 1; each ends with exactly one final or one error
    print("\naccounts:")
    terminal = {}
    for e in events:
        if e["request_id"] > 0 and e["kind"] in ("final", "error"):
            terminal.setdefault(e["request_id"], []).append(e)
    top = max(terminal) if terminal else 0
    missing = [i for i in range(1, top + 1) if i not in terminal]
    twice = [i for i, v in terminal.items() if len(v) > 1]
    finals = sum(1 for v in terminal.values() if v[0]["kind"] == "final")
    errors = [v[0] for v in terminal.values() if v[0]["kind"] == "error"]
    why = {}
    for e in errors:
        key = e["error"].split(":")[0] if "dropped" in e["error"] else e["error"].split("(")[0][-60:]
        why[key] = why.get(key, 0) + 1
    print("  requests: %d made (ids 1–%d), %d finals, %d errors %s; without an end: %d %s; "
          "with two ends: %d" % (top, top, finals, len(errors), why or "", len(missing),
                                 missing[:10] if missing else "", len(twice)))
    ok &= not missing and not twice
    last = samples[-1]
    print("  dropped requests: %d error events (metrics at the last sample: %d requests; and %d "
          "packets the decoders refused, reported in the stream errors below)" % (
              sum(1 for e in errors if "dropped" in e["error"]), last["dropped_requests"],
              last["dropped_packets"]))

    # ---- gaps: every gap event belongs to a fault of its stream
    gaps = [e for e in events if e["kind"] == "gap"]
    stream_errors = [e for e in events if e["kind"] == "error" and e["request_id"] == 0]
    unexplained = []
    for g in gaps:
        t = epoch(g["wall_utc"])
        if not any(f["stream"] == g["stream"] and f["start"] - 1 <= t <= f["end"] + GAP_AFTER_FAULT_S
                   for f in faults):
            unexplained.append(g)
    print("  gaps: %d events, %.1f media-s (metrics: %d, %.1f s); not following a fault of their "
          "stream: %d" % (len(gaps), sum(g["media_end"] - g["media_start"] for g in gaps),
                          last["gaps"], last["gap_s"], len(unexplained)))
    for g in unexplained[:10]:
        print("    %s %s gap %.1f–%.1f s" % (g["wall_utc"], g["stream"], g["media_start"], g["media_end"]))
    ok &= not unexplained
    print("  faults (%d):" % len(faults))
    unseen = 0
    for kind in ("kill", "freeze", "stall", "corrupt", "away"):
        fs = [f for f in faults if f["kind"] == kind]
        if not fs:
            continue
        seen_gaps, seen_errors, outages = 0, 0, []
        for f in fs:
            near = lambda e: f["start"] - 1 <= epoch(e["wall_utc"]) <= f["end"] + GAP_AFTER_FAULT_S
            g = [e for e in gaps if e["stream"] == f["stream"] and near(e)]
            seen_gaps += bool(g)
            outages += [e["media_end"] - e["media_start"] for e in g]
            seen_errors += sum(1 for e in stream_errors if e["stream"] == f["stream"] and near(e))
            if kind in ("kill", "freeze", "stall") and not g:
                unseen += 1
        print("    %-8s ×%d on %s: followed by a gap %d times (gaps of %s s), %d stream errors" % (
            kind, len(fs), fs[0]["stream"], seen_gaps,
            ", ".join("%.1f" % x for x in outages) or "–", seen_errors))
    ok &= unseen == 0

    # ---- the subscribers: every final, error and gap, unless it came while none was connected
    keyed = lambda e: (e["kind"], e["stream"], e["task"], e["request_id"], e["wall_utc"])
    got = {keyed(e) for e in received}
    aways = [f for f in faults if f["kind"] == "away"]
    lost, absent = [], 0
    for e in events:
        if e["kind"] not in ("final", "error", "gap") or keyed(e) in got:
            continue
        t = epoch(e["wall_utc"])
        if any(f["start"] - AWAY_MARGIN_S[0] <= t <= f["end"] + AWAY_MARGIN_S[1] for f in aways):
            absent += 1
        else:
            lost.append(e)
    published = sum(1 for e in events if e["kind"] in ("final", "error", "gap"))
    print("  subscribers (%d in turn): %d of %d finals, errors and gaps received; %d missed while "
          "none was connected; %d missed otherwise; ZeroMQ sink drops: %d" % (
              len(glob.glob(os.path.join(w, "subscriber-*.jsonl"))), published - absent - len(lost),
              published, absent, len(lost), last["sink_dropped"]))
    for e in lost[:10]:
        print("    %s %s/%s %s id %d" % (e["wall_utc"], e["stream"], e["task"], e["kind"], e["request_id"]))
    ok &= not lost
    print("  audio frames: %d in, %d used" % (last["audio_in"], last["audio_used"]))
    print("\nverdict: %s" % ("FLAT AND ACCOUNTED FOR" if ok else "NOT (see above)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
