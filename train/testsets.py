#!/usr/bin/python3
"""Test sets with new sentences and scenes, the same for the training program's own evaluation
and for rawflow's (tests/train/): speech from the training voices (sentences and channel draws
from a seed range training never uses) and from three festival voices never trained on, and
scenes drawn at camera frame sizes.

usage: /usr/bin/python3 train/testsets.py OUT_DIR [--speech N] [--scenes N]

writes OUT_DIR/speech/<set>/NNN.wav (16 kHz mono PCM) with OUT_DIR/speech/<set>.tsv (file, words),
OUT_DIR/scenes/NNN.png at the frame size with OUT_DIR/scenes.tsv (file, budget, caption).
"""
import argparse
import os
import random
import sys
import tempfile
import wave

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes  # noqa: E402
import speech  # noqa: E402

TEST_SEED_BASE = 7_000_000_000  # training seeds are seed * 1_000_003 + i with i < 10^6
SPEECH_SETS = ["train_voices"] + speech.TEST_VOICES


def pad(samples, rng):
    """The utterance with 0.2-0.6 s of digital silence on each side, as float32."""
    z = lambda: np.zeros(int(rng.uniform(0.2, 0.6) * speech.SAMPLE_RATE), np.float32)  # noqa: E731
    return np.concatenate([z(), samples.astype(np.float32) / 32768.0, z()])


def test_sentence(name, i):
    return speech.sentence(random.Random(TEST_SEED_BASE + 10_000 * (1 + SPEECH_SETS.index(name)) + i))


def speech_set(name, n):
    """[(float32 samples, reference)] of set `name`: n new sentences."""
    rng = random.Random(name)
    if name == "train_voices":
        items = [speech.training_utterance(TEST_SEED_BASE + i)[:2] for i in range(n)]
    else:
        sentences = [test_sentence(name, i) for i in range(n)]
        with tempfile.TemporaryDirectory() as tmp:
            items = list(zip(speech.test_utterances(name, sentences, tmp), sentences))
    return [(pad(x, rng), " ".join(w)) for x, w in items]


def speech_sets(cache_dir, n):
    """{set: [(float32 samples, reference)]}, cached as .npz under cache_dir."""
    out = {}
    os.makedirs(cache_dir, exist_ok=True)
    for name in SPEECH_SETS:
        path = os.path.join(cache_dir, f"{name}-{n}.npz")
        if not os.path.exists(path):
            items = speech_set(name, n)
            np.savez(path + ".tmp.npz", samples=np.array([x for x, _ in items], dtype=object),
                     refs=np.array([r for _, r in items]))
            os.replace(path + ".tmp.npz", path)
        z = np.load(path, allow_pickle=True)
        out[name] = [(x.astype(np.float32), str(r)) for x, r in zip(z["samples"], z["refs"])]
    return out


def scene_item(i):
    """(PIL image at its frame size, budget, caption)."""
    rng = random.Random(TEST_SEED_BASE + i)
    aspect = rng.choice(list(scenes.FRAME_SIZES))
    w, h = rng.choice(scenes.FRAME_SIZES[aspect])
    img, shapes = scenes.render(rng, w, h)
    return img, (70 if i % 2 == 0 else 280), scenes.caption(shapes)


def scene_set(n):
    """[(uint8 pixels at the budget size, caption)]: what rawflow's resize gives it."""
    out = []
    for i in range(n):
        img, budget, cap = scene_item(i)
        out.append((np.asarray(scenes.resize_to_budget(img, budget)), cap))
    return out


def write_wav(path, samples):
    pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(speech.SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--speech", type=int, default=40)
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--sets", default=",".join(SPEECH_SETS))
    a = ap.parse_args()
    for name in a.sets.split(","):
        d = os.path.join(a.out, "speech", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(a.out, "speech", f"{name}.tsv"), "w") as tsv:
            for i, (samples, ref) in enumerate(speech_set(name, a.speech)):
                write_wav(os.path.join(d, f"{i:03d}.wav"), samples)
                tsv.write(f"{name}/{i:03d}.wav\t{ref}\n")
    d = os.path.join(a.out, "scenes")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(a.out, "scenes.tsv"), "w") as tsv:
        for i in range(a.scenes):
            img, budget, cap = scene_item(i)
            img.save(os.path.join(d, f"{i:03d}.png"))
            tsv.write(f"scenes/{i:03d}.png\t{budget}\t{cap}\n")
    print(f"wrote {a.out}: {a.speech} clips per speech set ({a.sets}), {a.scenes} scenes")


if __name__ == "__main__":
    main()
