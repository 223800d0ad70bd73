#!/usr/bin/python3
"""Trains the small Gemma 4 unified model that ships as rawflow's embedded default.

usage: /usr/bin/python3 train/train.py [--work DIR] [--steps N] [--seed S] [--export DIR] [--smoke]

Everything is a pure function of --seed: the speech cache (speech.py), each step's batch (drawn
from random.Random((seed, step))), the initial weights. Checkpoints go to DIR/checkpoint.pt every
--checkpoint-minutes and at the end; a re-run of the same command resumes from there. At the end
it evaluates itself (WER on new sentences from the training voices and from three festival voices
it never heard, caption accuracy on new scenes), writes DIR/eval.json and exports the Hugging Face
directory (config.json, model.safetensors, tokenizer.json) to --export.

Needs Debian's python3-torch and python3-numpy, python3-pil, espeak-ng, flite, festival with
festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts, sox and ffmpeg (scripts/setup.sh).
"""
import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import model as gm  # noqa: E402
import scenes  # noqa: E402
import speech  # noqa: E402
import vocab  # noqa: E402

MAX_CLIP_S = 10.0
SR = speech.SAMPLE_RATE


# ---------------------------------------------------------------------------------------------
# examples


# The run starts on easy speech and adds the hard parts once the model listens (measured: with
# sentences of up to 12 words and every augmentation from the start, five runs stayed 1,000-1,500
# steps without using the audio; on one-word clips, 300 steps of clean audio reached a loss of 1.49
# where the same steps with the augmentations reached 1.93; run 6, whose short utterances ended
# at 15 % of the steps, listened on them and lost it when every length came at once: train/README.md):
#  - utterance length grows in stages: LENGTH_STAGES (share of the steps, most words), then all;
#  - augmentation (a noise floor, two utterances in one clip, a short utterance in a long window)
#    is off for the first AUG_START share, ramps up to full by AUG_FULL, and codec round trips
#    join with it. Silence-only clips and exact digital zeros are there from the start.
LENGTH_STAGES = ((0.30, 3), (0.55, 6))
AUG_START, AUG_FULL = 0.5, 0.75


def max_words(step, steps):
    """The longest utterance step `step` hears (None: every length)."""
    for share, words in LENGTH_STAGES:
        if step < share * steps:
            return words
    return None


def augmentation(step, steps):
    """0 (clean clips) .. 1 (every augmentation at its full rate) at `step`."""
    return min(1.0, max(0.0, (step / steps - AUG_START) / (AUG_FULL - AUG_START)))


def speech_pools(utts):
    """{(most words or None, clean only): utterances}: what pick_pool chooses from."""
    pools = {}
    for words in [w for _, w in LENGTH_STAGES] + [None]:
        fit = [u for u in utts if words is None or len(u[1]) <= words]
        pools[(words, False)] = fit
        pools[(words, True)] = [u for u in fit if u[2].endswith(" pcm")]
    return pools


def pick_pool(step, steps, pools):
    """The utterances step `step` draws from: short ones first, pcm-only while augmentation is off."""
    return pools[(max_words(step, steps), augmentation(step, steps) == 0.0)]


def speech_clip(rng, utts, aug=1.0):
    """(float32 samples, words): 1 or 2 cached utterances with silences, gain and a noise floor;
    `aug` scales how often the hard cases (two utterances, a long window, a noise floor) occur."""
    if rng.random() < 0.03:  # nothing said: silence (digital zeros or a noise floor) only
        parts, words = [np.zeros(int(rng.uniform(0.3, 3.0) * SR), np.float32)], []
    else:
        k = 2 if rng.random() < 0.25 * aug else 1
        picks = [utts[rng.randrange(len(utts))] for _ in range(k)]
        if sum(len(p[0]) for p in picks) > (MAX_CLIP_S - 2.5) * SR:
            picks = picks[:1]
        parts, words = [], []
        for i, (samples, w, _) in enumerate(picks):
            if i:
                parts.append(np.zeros(int(rng.uniform(0.15, 0.8) * SR), np.float32))
            parts.append(samples.astype(np.float32) / 32768.0)
            words += w
    speech_len = sum(len(p) for p in parts)
    if rng.random() < 0.15 * aug:  # a short utterance somewhere in a long window: seconds of silence around it
        room = max(0, int(rng.uniform(0.5, 1.0) * MAX_CLIP_S * SR) - speech_len)
        n_lead = int(rng.uniform(0, 1) * room)
        n_trail = room - n_lead
    else:
        n_lead = int(rng.uniform(0, 0.6) * SR) if rng.random() < 0.7 else 0
        n_trail = int(rng.uniform(0, 0.6) * SR) if rng.random() < 0.7 else 0
    lead, trail = np.zeros(n_lead, np.float32), np.zeros(n_trail, np.float32)
    x = np.concatenate([lead] + parts + [trail])[: int(MAX_CLIP_S * SR)]
    peak = float(np.abs(x).max()) or 1.0
    x *= 10 ** (rng.uniform(-30, 0) / 20) / peak
    if rng.random() < 0.5 * aug:  # a noise floor under everything; otherwise silences stay exact zeros
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 1, len(x)).astype(np.float32)
        if rng.random() < 0.5:  # pinkish: a running mean tilts the spectrum down
            noise = np.convolve(noise, np.ones(8, np.float32) / 8, mode="same") * 2.8
        # The floor sits 15-50 dB below the speech's peak (not below full scale: a quiet talker
        # under a full-scale-relative floor was buried at negative SNRs)
        x += noise * float(np.abs(x).max()) * 10 ** (-rng.uniform(15, 50) / 20)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.float32) / 32768.0, words


def audio_frames(samples):
    """[ceil(n/640), 640]: zero-padded on the right, never an extra frame (spec §4.2)."""
    n = -(-len(samples) // gm.FRAME)
    out = np.zeros(n * gm.FRAME, np.float32)
    out[: len(samples)] = samples
    return out.reshape(n, gm.FRAME)


class Prompts:
    """Token ids of the fixed prompt pieces, tokenized once."""

    def __init__(self, tok):
        self.tok = tok
        self.boa, self.aud, self.eoa = tok.id("<|audio>"), tok.id("<|audio|>"), tok.id("<audio|>")
        self.boi, self.img, self.eoi = tok.id("<|image>"), tok.id("<|image|>"), tok.id("<image|>")
        self.end = tok.id("<turn|>")
        self.audio = [tuple(map(tok.encode, vocab.audio_prompt_text(p))) for p in vocab.TRANSCRIBE_PROMPTS]
        self.image = [tuple(map(tok.encode, vocab.image_prompt_text(p))) for p in vocab.DESCRIBE_PROMPTS]

    def speech(self, n_frames, which):
        before, after = self.audio[which]
        return before + [self.boa] + [self.aud] * n_frames + [self.eoa] + after

    def picture(self, n_tiles, which):
        before, after = self.image[which]
        return before + [self.boi] + [self.img] * n_tiles + [self.eoi] + after

    def answer(self, text):
        return self.tok.encode(text) + [self.end]


def collate(prompts, answers, soft, types_of):
    """Right-padded batch: ids, types, image blocks, labels (-100 outside answers), soft rows."""
    seqs = [p + a for p, a in zip(prompts, answers)]
    T = max(len(s) for s in seqs)
    B = len(seqs)
    ids = torch.zeros(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    blocks = torch.full((B, T), -1, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, (p, a) in enumerate(zip(prompts, answers)):
        s = p + a
        ids[b, : len(s)] = torch.tensor(s)
        t = torch.tensor([types_of.get(i, gm.TYPE_TEXT) for i in s])
        types[b, : len(s)] = t
        blocks[b, : len(s)] = torch.where(t == gm.TYPE_IMAGE, 0, -1)  # one image per prompt
        labels[b, len(p) - 1 : len(s) - 1] = torch.tensor(a)
    return ids, types, blocks, labels, soft


def speech_batch(rng, utts, P, n, aug=1.0):
    prompts, answers, frames = [], [], []
    for _ in range(n):
        x, words = speech_clip(rng, utts, aug)
        f = audio_frames(x)
        frames.append(f)
        prompts.append(P.speech(len(f), rng.randrange(len(P.audio))))
        answers.append(P.answer(vocab.join_words(words)))
    return prompts, answers, np.concatenate(frames)


def image_batch(rng, P, n):
    prompts, answers, tiles, xs, ys = [], [], [], [], []
    for _ in range(n):
        px, cap, _ = scenes.scene(rng.getrandbits(48))
        t, x, y = scenes.patchify(px)
        tiles.append(t), xs.append(x), ys.append(y)
        prompts.append(P.picture(len(t), rng.randrange(len(P.image))))
        answers.append(P.answer(cap))
    return prompts, answers, (np.concatenate(tiles), np.concatenate(xs), np.concatenate(ys))


def batch_loss(m, P, batch, kind):
    prompts, answers, media = batch
    if kind == "audio":
        soft = m.embed_audio_frames(torch.from_numpy(media))
        types_of = {P.aud: gm.TYPE_AUDIO}
    else:
        t, x, y = media
        soft = m.embed_tiles(torch.from_numpy(t), torch.from_numpy(x).long(), torch.from_numpy(y).long())
        types_of = {P.img: gm.TYPE_IMAGE}
    ids, types, blocks, labels, soft = collate(prompts, answers, soft, types_of)
    logits = m(ids, types, blocks, soft)
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1), reduction="sum"), int(
        (labels != -100).sum())


# ---------------------------------------------------------------------------------------------
# greedy decoding and evaluation (the training program's own figures)


@torch.no_grad()
def greedy(m, P, prompts, soft, types_of, max_new=48):
    """Greedy answers for right-padded prompts (no KV cache: the model is small)."""
    suppress = [P.eoi, P.eoa]
    outs = [[] for _ in prompts]
    done = [False] * len(prompts)
    for _ in range(max_new):
        seqs = [p + o for p, o in zip(prompts, outs)]
        ids, types, blocks, _, s = collate(seqs, [[] for _ in seqs], soft, types_of)
        logits = m(ids, types, blocks, s)
        logits[..., suppress] = float("-inf")
        for b, seq in enumerate(seqs):
            if done[b]:
                continue
            nxt = int(logits[b, len(seq) - 1].argmax())
            if nxt == P.end or nxt == P.tok.id("<eos>"):
                done[b] = True
            else:
                outs[b].append(nxt)
        if all(done):
            break
    return [P.tok.decode(o).strip() for o in outs]


def word_errors(ref, hyp):
    """Levenshtein distance between word lists."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


def transcribe(m, P, clips, prompt=0, batch=16):
    out = []
    for i in range(0, len(clips), batch):
        chunk = clips[i : i + batch]
        frames = [audio_frames(c) for c in chunk]
        soft = m.embed_audio_frames(torch.from_numpy(np.concatenate(frames)))
        out += greedy(m, P, [P.speech(len(f), prompt) for f in frames], soft, {P.aud: gm.TYPE_AUDIO})
    return out


def describe(m, P, images, prompt=0, batch=8):
    out = []
    for i in range(0, len(images), batch):
        parts = [scenes.patchify(px) for px in images[i : i + batch]]
        soft = m.embed_tiles(torch.from_numpy(np.concatenate([p[0] for p in parts])),
                             torch.from_numpy(np.concatenate([p[1] for p in parts])).long(),
                             torch.from_numpy(np.concatenate([p[2] for p in parts])).long())
        out += greedy(m, P, [P.picture(len(p[0]), prompt) for p in parts], soft, {P.img: gm.TYPE_IMAGE})
    return out


def wer(refs, hyps):
    errors = sum(word_errors(r.split(), h.split()) for r, h in zip(refs, hyps))
    return errors / max(1, sum(len(r.split()) for r in refs))


def evaluate(m, P, test_dir, n_speech, n_scenes):
    """The figures of the model card, on test sets from testsets.py (new sentences and scenes)."""
    import testsets
    m.eval()
    result = {}
    for name, items in testsets.speech_sets(test_dir, n_speech).items():
        hyps = transcribe(m, P, [x for x, _ in items])
        result[f"wer_{name}"] = wer([r for _, r in items], hyps)
        result[f"examples_{name}"] = [[r, h] for (_, r), h in list(zip(items, hyps))[:5]]
    items = testsets.scene_set(n_scenes)
    hyps = describe(m, P, [px for px, _ in items])
    scores = [scenes.score_caption(c, h) for (_, c), h in zip(items, hyps)]
    for attr in scores[0]:
        result[f"caption_{attr}"] = sum(s[attr] for s in scores) / len(scores)
    result["examples_scenes"] = [[c, h] for (_, c), h in list(zip(items, hyps))[:5]]
    m.train()
    return result


# ---------------------------------------------------------------------------------------------


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


_make_batches = None  # set by main() before the prefetch worker forks


def _batches_of(step):
    return _make_batches(step)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.environ.get("RAWFLOW_TRAIN_DIR", "/work/train-run"))
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speech-utterances", type=int, default=16000)
    ap.add_argument("--speech-batch", type=int, default=16)
    ap.add_argument("--image-batch", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--checkpoint-minutes", type=float, default=10)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-speech", type=int, default=100, help="test clips per speech set")
    ap.add_argument("--eval-scenes", type=int, default=200)
    ap.add_argument("--export", help="write the Hugging Face directory here at the end")
    ap.add_argument("--smoke", action="store_true", help="a one-minute run: tiny cache, few steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                    help="bf16 autocast for matmuls (weights and optimizer stay f32); auto = on where "
                         "the CPU has AVX-512 BF16, where it is ~2x faster")
    a = ap.parse_args()
    if a.smoke:
        a.steps, a.speech_utterances, a.eval_speech, a.eval_scenes, a.log_every = 40, 200, 4, 4, 10
        a.speech_batch, a.image_batch = 6, 2
    torch.set_num_threads(a.threads)
    bf16 = a.bf16 == "on" or (a.bf16 == "auto" and "avx512_bf16" in open("/proc/cpuinfo").read())
    os.makedirs(a.work, exist_ok=True)
    t_start = time.time()

    cache = os.path.join(a.work, f"speech-s{a.seed}")
    speech.build_cache(cache, a.speech_utterances, a.seed)
    utts = speech.load_cache(cache, a.speech_utterances)
    print(f"speech cache: {len(utts)} utterances, {sum(len(u[0]) for u in utts) / SR / 3600:.2f} h "
          f"({time.time() - t_start:.0f} s)", flush=True)

    pools = speech_pools(utts)
    for share, words in LENGTH_STAGES:
        print(f"up to {share:.0%} of the steps: {len(pools[(words, False)])} utterances of at most {words} words",
              flush=True)
    print(f"clean clips ({len(pools[(None, True)])} utterances without a codec) until {AUG_START:.0%}, "
          f"augmentation at full rate from {AUG_FULL:.0%}", flush=True)
    tok = vocab.Tokenizer()
    P = Prompts(tok)

    def batches(step):
        """Step `step`'s examples: a pure function of (seed, step), so a resumed run sees the same."""
        rng = random.Random(a.seed * 1_000_000_007 + step)
        pool = pick_pool(step, a.steps, pools)
        return (speech_batch(rng, pool, P, a.speech_batch, augmentation(step, a.steps)),
                image_batch(rng, P, a.image_batch))

    # The next step's examples are made in a forked worker while this step trains (rendering three
    # camera-sized scenes and mixing 16 clips took ~0.4 s of a ~1.6 s step on one core). Forked
    # before torch starts its thread pool.
    global _make_batches
    _make_batches = batches
    prefetch = multiprocessing.get_context("fork").Pool(1)
    torch.manual_seed(a.seed)
    m = gm.Gemma4Unified(gm.default_config(len(tok)))
    decay = set(id(p) for p in gm.matrix_parameters(m))
    groups = [{"params": [p for p in m.parameters() if id(p) in decay], "weight_decay": 0.05},
              {"params": [p for p in m.parameters() if id(p) not in decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98), eps=1e-8)
    ckpt = os.path.join(a.work, "checkpoint.pt")
    step, log = 0, []
    if os.path.exists(ckpt):
        state = torch.load(ckpt)
        if state["args"]["seed"] != a.seed or state["args"]["steps"] != a.steps:
            sys.exit(f"{ckpt} is from another run (seed/steps differ): move it away or use another --work")
        m.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, log = state["step"], state["log"]
        print(f"resumed at step {step}", flush=True)

    def save():
        tmp = ckpt + ".tmp"
        torch.save({"model": m.state_dict(), "opt": opt.state_dict(), "step": step, "log": log,
                    "args": vars(a)}, tmp)
        os.replace(tmp, ckpt)
        export.export_hf(m, tok, os.path.join(a.work, "hf-latest"))

    last_save = time.time()
    window = []
    ahead = prefetch.apply_async(_batches_of, (step,))
    while step < a.steps:
        lr = lr_at(step, a.steps, a.lr, min(150, a.steps // 4))
        for g in opt.param_groups:
            g["lr"] = lr
        t0 = time.time()
        sb, ib = ahead.get()
        if step + 1 < a.steps:
            ahead = prefetch.apply_async(_batches_of, (step + 1,))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            ls, ns = batch_loss(m, P, sb, "audio")
            li, ni = batch_loss(m, P, ib, "image")
        loss = (ls + li) / (ns + ni)
        opt.zero_grad()
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0))
        opt.step()
        step += 1
        window.append((float(ls) / ns, float(li) / ni, gnorm, time.time() - t0))
        if step == 1 or step % a.log_every == 0 or step == a.steps:
            s, i, g, dt = (float(np.mean(c)) for c in zip(*window))
            log.append({"step": step, "speech_loss": s, "scene_loss": i, "grad_norm": g, "s_per_step": dt, "lr": lr})
            print(f"step {step}/{a.steps} speech {s:.3f} scene {i:.3f} |g| {g:.2f} lr {lr:.2e} "
                  f"{dt:.2f} s/step", flush=True)
            window = []
        if time.time() - last_save > a.checkpoint_minutes * 60:
            save()
            last_save = time.time()
    save()
    prefetch.close()
    print(f"trained {step} steps", flush=True)

    result = evaluate(m, P, os.path.join(a.work, "testsets"), a.eval_speech, a.eval_scenes)
    result.update({"steps": step, "seed": a.seed, "params": sum(p.numel() for p in m.parameters()),
                   "log": log[-1] if log else None})
    with open(os.path.join(a.work, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("examples")}, indent=1))
    for k, v in result.items():
        if k.startswith("examples"):
            for r, h in v[:3]:
                print(f"  {k}: {r!r} -> {h!r}")
    if a.export:
        export.export_hf(m, tok, a.export)
        print(f"exported {a.export}")


if __name__ == "__main__":
    main()
