#!/usr/bin/python3
"""Accuracy of the trained demo model, measured by rawflow through the paths a user takes
(issue #11), on test sets generated now with new sentences and scenes (train/testsets.py):

  cli    `rawflow transcribe` on each clip (16-bit WAV), `rawflow describe` on each scene (PNG at
         its camera frame size; budget 70 or 280 as the set says)
  torch  the training program's own evaluation (train/train.py transcribe/describe, f32, exact
         GELU) on the same media: its figures must be within 1 point of the cli path's
  files  `rawflow run` on one MKV (H.264 video of 16:9 scenes, PCM audio), a clip and a scene in
         each SLOT-second window: transcribe windows and describe intervals of SLOT seconds
  rtsp   the same MKV served by tests/rtsp/rtsp_server.py in real time, AAC 48 kHz + H.264,
         through `rawflow run`: its WER within 2 points of the files path's on the same clips

usage: accuracy.py --rawflow BIN --model DIR --work DIR [--speech N] [--scenes N] [--slots N]
                   [--rtsp-slots N] [--bounds k=v,...] [--report FILE]

Prints every figure; exits 1 when one misses its bound (--bounds: wer_train_voices, wer_festival,
caption_all, caption_attr are upper/lower bounds in %).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "train"))
import scenes  # noqa: E402
import testsets  # noqa: E402
import train  # noqa: E402

FESTIVAL = testsets.SPEECH_SETS[1:]
ATTRS = ["count", "size", "colour", "shape", "position"]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def answer(stdout):
    """rawflow's streamed answer is the whole of stdout (timings go to stderr)."""
    return stdout.strip()


def caption_scores(pairs):
    s = [scenes.score_caption(t, h) for t, h in pairs]
    out = {f"caption_{a}": 100.0 * sum(x[a] for x in s) / len(s) for a in ATTRS + ["all"]}
    out["caption_worst_attr"] = min(out[f"caption_{a}"] for a in ATTRS)
    return out


def speech_figures(hyps, sets):
    """{wer_<set>: %} and the festival sets pooled."""
    out = {}
    for name in sets:
        refs = [r for r, _ in hyps[name]]
        out[f"wer_{name}"] = 100.0 * train.wer(refs, [h for _, h in hyps[name]])
    pooled = [p for n in FESTIVAL if n in hyps for p in hyps[n]]
    if pooled:
        out["wer_festival"] = 100.0 * train.wer([r for r, _ in pooled], [h for _, h in pooled])
    return out


def cli_path(a, test):
    hyps = {}
    for name in testsets.SPEECH_SETS:
        rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(test, "speech", f"{name}.tsv"))]
        hyps[name] = [(ref, answer(run([a.rawflow, "transcribe", "--model", a.model, "--greedy", "-n", "40",
                                        os.path.join(test, "speech", f)]))) for f, ref in rows]
    pairs = []
    for line in open(os.path.join(test, "scenes.tsv")):
        f, budget, cap = line.rstrip("\n").split("\t")
        pairs.append((cap, answer(run([a.rawflow, "describe", "--model", a.model, "--greedy", "-n", "48",
                                      "--budget", budget, os.path.join(test, f)]))))
    return hyps, pairs


def torch_path(a, test):
    """The training program's evaluation on the very files the cli path read."""
    import torch
    import export
    import vocab
    from PIL import Image
    torch.set_num_threads(2)
    m = export.load_hf(a.model)
    P = train.Prompts(vocab.Tokenizer())
    hyps = {}
    for name in testsets.SPEECH_SETS:
        rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(test, "speech", f"{name}.tsv"))]
        clips = [read_wav(os.path.join(test, "speech", f)) for f, _ in rows]
        # rawflow transcribe sends the official ASR instruction: TRANSCRIBE_PROMPTS[1]
        hyps[name] = list(zip([r for _, r in rows], train.transcribe(m, P, clips, prompt=1)))
    pairs = []
    for line in open(os.path.join(test, "scenes.tsv")):
        f, budget, cap = line.rstrip("\n").split("\t")
        px = np.asarray(scenes.resize_to_budget(Image.open(os.path.join(test, f)).convert("RGB"), int(budget)))
        pairs.append((cap, train.describe(m, P, [px], prompt=1)[0]))  # "Describe this image in detail."
    return hyps, pairs


def read_wav(path):
    import wave
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0


# ---------------------------------------------------------------------------------------------
# the pipeline: one MKV, one clip and one scene per slot


def compose(work, test, slot, n):
    """video.mkv: slot k (k < n) holds clip k of the pooled sets (train voices and festival voices
    in turn) from 0.5 s in, and scene k (a 640x360 frame) for its whole length. Returns the
    slots' (set, reference, caption)."""
    import random
    from PIL import Image
    clips = {name: [l.rstrip("\n").split("\t") for l in open(os.path.join(test, "speech", f"{name}.tsv"))]
             for name in testsets.SPEECH_SETS}
    order = [(name, i) for i in range(max(len(v) for v in clips.values()))
             for name in testsets.SPEECH_SETS if i < len(clips[name])]
    audio, slots = [], []
    frames = os.path.join(work, "frames")
    os.makedirs(frames, exist_ok=True)
    for k, (name, i) in enumerate(order[:n]):
        f, ref = clips[name][i]
        x = read_wav(os.path.join(test, "speech", f))
        if len(x) > (slot - 0.5) * 16000:
            raise SystemExit(f"{f}: {len(x) / 16000:.1f} s does not fit a {slot} s slot")
        s = np.zeros(int(slot * 16000), np.float32)
        s[8000:8000 + len(x)] = x
        audio.append(s)
        rng = random.Random(testsets.TEST_SEED_BASE + 500_000 + k)
        img, shapes = scenes.render(rng, 640, 360)
        img.save(os.path.join(frames, f"{k:03d}.png"))
        slots.append((name, ref, scenes.caption(shapes)))
    wav = os.path.join(work, "audio.wav")
    testsets.write_wav(wav, np.concatenate(audio))
    run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-framerate", f"1/{slot}", "-i",
         os.path.join(frames, "%03d.png"), "-i", wav, "-r", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-g", "10", "-c:a", "pcm_s16le", "-shortest", os.path.join(work, "video.mkv")])
    return slots


def pipeline_config(work, url, slot, name, model):
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(f"""version: 1
streams:
  - name: {name}
    url: {url}
tasks:
  - name: speech
    kind: transcribe
    window_s: {slot}
    max_new_tokens: 40
  - name: scene
    kind: describe
    interval_s: {slot}
    frames_per_request: 1
    image_budget: 70
    max_new_tokens: 48
engine:
  model: {os.path.abspath(model)}
outputs:
  jsonl:
    path: {os.path.join(work, name + '.jsonl')}
""")
    return path


def finals(jsonl, slot):
    out = {"speech": {}, "scene": {}}
    for line in open(jsonl):
        e = json.loads(line)
        if e["kind"] == "final":
            out[e["task"]][int(round(e["media_start"] / slot))] = e["text"].strip()
    return out


def pipeline_figures(slots, got, what):
    hyps = {}
    missing = [k for k in range(len(slots)) if k not in got["speech"]]
    if missing:
        raise SystemExit(f"FAIL: {what}: no transcript for slots {missing}")
    for k, (name, ref, _) in enumerate(slots):
        hyps.setdefault(name, []).append((ref, got["speech"][k]))
    fig = speech_figures(hyps, [n for n in testsets.SPEECH_SETS if n in hyps])
    pooled = [p for v in hyps.values() for p in v]
    fig["wer_all"] = 100.0 * train.wer([r for r, _ in pooled], [h for _, h in pooled])
    cap = [(c, got["scene"].get(k, "")) for k, (_, _, c) in enumerate(slots)]
    fig.update(caption_scores(cap))
    return fig, hyps


def run_files(a, work, slots):
    cfg = pipeline_config(work, os.path.join(work, "video.mkv"), a.slot, "files", a.model)
    run([a.rawflow, "run", cfg])
    return pipeline_figures(slots, finals(os.path.join(work, "files.jsonl"), a.slot), "files")


def run_rtsp(a, work, slots):
    server = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/rtsp/rtsp_server.py"), "0", "--audio",
                               "aac", "--file", os.path.join(work, "video.mkv")], stdout=subprocess.PIPE, text=True)
    try:
        ready = server.stdout.readline().split()
        if not ready or ready[0] != "READY":
            raise SystemExit("FAIL: the RTSP server did not start")
        cfg = pipeline_config(work, ready[2], a.slot, "rtsp", a.model)
        rf = subprocess.Popen([a.rawflow, "run", cfg],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "rtsp.log"), "w"))
        deadline = time.time() + len(slots) * a.slot + 40
        jsonl = os.path.join(work, "rtsp.jsonl")
        while time.time() < deadline:  # until every slot's transcript is out (the stream then reconnects)
            time.sleep(1)
            if os.path.exists(jsonl) and len(finals(jsonl, a.slot)["speech"]) >= len(slots):
                break
        rf.send_signal(signal.SIGINT)
        rf.wait(timeout=60)
    finally:
        server.kill()
    got = finals(jsonl, a.slot)
    got["speech"] = {k: v for k, v in got["speech"].items() if k < len(slots)}
    return pipeline_figures(slots, got, "rtsp")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rawflow", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--speech", type=int, default=24, help="clips per speech set")
    ap.add_argument("--scenes", type=int, default=24)
    ap.add_argument("--slot", type=int, default=8, help="seconds per pipeline window")
    ap.add_argument("--slots", type=int, default=24, help="windows of the pipeline files run")
    ap.add_argument("--rtsp-slots", type=int, default=10, help="windows of the RTSP run (real time)")
    ap.add_argument("--bounds", default="", help="wer_train_voices=5,wer_festival=15,caption_all=85,caption_attr=97")
    ap.add_argument("--report", help="write every figure as JSON here")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    test = os.path.join(a.work, "test")
    run(["/usr/bin/python3", os.path.join(ROOT, "train/testsets.py"), test, "--speech", str(a.speech),
         "--scenes", str(a.scenes)])
    report, fails = {}, []

    t = time.time()
    hyps, pairs = cli_path(a, test)
    report["cli"] = {**speech_figures(hyps, testsets.SPEECH_SETS), **caption_scores(pairs)}
    report["cli_examples"] = {n: hyps[n][:3] for n in hyps} | {"scenes": pairs[:3]}
    print(f"cli ({time.time() - t:.0f} s): " + fmt(report["cli"]), flush=True)

    t = time.time()
    th, tp = torch_path(a, test)
    report["torch"] = {**speech_figures(th, testsets.SPEECH_SETS), **caption_scores(tp)}
    print(f"torch ({time.time() - t:.0f} s): " + fmt(report["torch"]), flush=True)
    for k in ["wer_train_voices", "wer_festival", "caption_all"] + [f"caption_{x}" for x in ATTRS]:
        if abs(report["torch"][k] - report["cli"][k]) > 1.0:
            fails.append(f"{k}: training program {report['torch'][k]:.1f} vs rawflow {report['cli'][k]:.1f} (> 1 point)")

    def pipeline(name, runner, n):
        """Composes an n-slot MKV in its own folder and measures one `rawflow run` path on it."""
        work = os.path.join(a.work, name)
        os.makedirs(work, exist_ok=True)
        slots = compose(work, test, a.slot, n)
        t = time.time()
        report[name], hyps = runner(a, work, slots)
        print(f"run, {name} ({time.time() - t:.0f} s): " + fmt(report[name]), flush=True)
        return slots, hyps

    _, fh = pipeline("files", run_files, a.slots)
    if a.rtsp_slots:
        rslots, _ = pipeline("rtsp", run_rtsp, a.rtsp_slots)
        same = [p for v in fh.values() for p in v][: len(rslots)]
        file_wer = 100.0 * train.wer([r for r, _ in same], [h for _, h in same])
        report["rtsp"]["wer_files_same_clips"] = file_wer
        print(f"rtsp WER {report['rtsp']['wer_all']:.1f} % vs files {file_wer:.1f} % on the same {len(rslots)} clips")
        if abs(report["rtsp"]["wer_all"] - file_wer) > 2.0:
            fails.append(f"rtsp WER {report['rtsp']['wer_all']:.1f} vs files {file_wer:.1f} (> 2 points)")

    bounds = dict(kv.split("=") for kv in a.bounds.split(",") if kv)
    for k, v in bounds.items():
        v = float(v)
        if k.startswith("wer_") and report["cli"][k] > v:
            fails.append(f"{k} {report['cli'][k]:.1f} % > {v} %")
        if k == "caption_all" and report["cli"][k] < v:
            fails.append(f"caption_all {report['cli'][k]:.1f} % < {v} %")
        if k == "caption_attr" and report["cli"]["caption_worst_attr"] < v:
            fails.append(f"worst caption attribute {report['cli']['caption_worst_attr']:.1f} % < {v} %")
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1)
    for f in fails:
        print("FAIL:", f)
    print("accuracy: " + ("FAILED" if fails else "all bounds hold"))
    return 1 if fails else 0


def fmt(fig):
    return ", ".join(f"{k} {v:.1f}" for k, v in fig.items() if isinstance(v, float))


if __name__ == "__main__":
    sys.exit(main())
