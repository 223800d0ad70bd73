"""Synthetic scenes: 1-3 coloured shapes on plain or textured backgrounds, with their caption.

A scene is drawn at a camera's frame size (16:9, 4:3 or 1:1), then resized to the size rawflow's
image budget policy gives it (media/image_budget.cpp hf_target_size, spec §3.1) with Pillow's
bicubic filter, which rawflow's default resize reproduces byte for byte (docs/media.md). Shapes sit
in distinct thirds of the width (left, center, right), are small or large relative to the frame,
and have one of six chromatic colours with some jitter; some frames go through a JPEG round trip
or a slight blur, as decoded video does. The caption names the count and, left to right, each
shape's size, colour, shape and position.
"""
import io
import math
import random
import re

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import vocab

TILE = 48
COLOUR_RGB = {"red": (215, 35, 35), "green": (35, 165, 60), "blue": (35, 70, 215), "yellow": (235, 215, 40),
              "orange": (240, 135, 25), "purple": (135, 55, 175)}
POSITION_PHRASE = {"left": "on the left", "center": "in the center", "right": "on the right"}
COLUMNS = ["left", "center", "right"]
FRAME_SIZES = {"16:9": [(640, 360), (1280, 720), (854, 480)], "4:3": [(640, 480), (320, 240)],
               "1:1": [(480, 480), (256, 256)]}
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}


def hf_target_size(width, height, budget):
    """media/image_budget.cpp hf_target_size, same operations in binary64 (spec §3.1)."""
    max_patches = 9 * budget
    target_px = float(max_patches * 256)
    factor = math.sqrt(target_px / float(height * width))
    th = math.floor(factor * height / TILE) * TILE
    tw = math.floor(factor * width / TILE) * TILE
    max_side = (max_patches // 9) * TILE
    if th == 0:
        th, tw = TILE, min(math.floor(width / height) * TILE, max_side)
    elif tw == 0:
        tw, th = TILE, min(math.floor(height / width) * TILE, max_side)
    return int(tw), int(th)


def caption(shapes):
    """shapes: [(size, colour, shape, column)] left to right."""
    n = len(shapes)
    parts = [f"a {s} {c} {k} {POSITION_PHRASE[p]}" for s, c, k, p in shapes]
    body = parts[0] if n == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{COUNT_WORDS[n]} shape{'s' if n > 1 else ''}: {body}"


CAPTION_RE = re.compile(r"a (\w+) (\w+) (\w+) (?:on the|in the) (\w+)")


def parse_caption(text):
    """(count word, [(size, colour, shape, column)]) of a caption; None where it does not parse."""
    m = re.match(r"\s*(\w+) shapes?:", text)
    return (m.group(1) if m else None), [tuple(x) for x in CAPTION_RE.findall(text)]


def score_caption(truth, said):
    """Per-attribute correctness of one caption: count, then size/colour/shape/position of each
    true shape (matched to the said shape at the same index; a missing one is wrong in all four)."""
    tc, ts = parse_caption(truth)
    sc, ss = parse_caption(said)
    out = {"count": tc == sc and len(ss) == len(ts)}
    for attr, i in (("size", 0), ("colour", 1), ("shape", 2), ("position", 3)):
        out[attr] = all(j < len(ss) and ss[j][i] == t[i] for j, t in enumerate(ts))
    out["all"] = all(out.values()) and said.strip() == truth.strip()
    return out


def background(rng, w, h):
    base = rng.randint(45, 210)
    tint = np.array([rng.randint(-14, 14) for _ in range(3)])
    kind = rng.choice(["plain", "plain", "noise", "stripes", "checker", "gradient"])
    img = np.full((h, w, 3), base, dtype=np.float32) + tint
    if kind == "noise":
        img += np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(6, 22), (h, w, 1))
    elif kind in ("stripes", "checker"):
        period = rng.randint(6, 40)
        yy, xx = np.mgrid[0:h, 0:w]
        if kind == "stripes":
            ang = rng.uniform(0, math.pi)
            band = ((xx * math.cos(ang) + yy * math.sin(ang)) // period) % 2
        else:
            band = ((xx // period) + (yy // period)) % 2
        img += (band[..., None] * 2 - 1) * rng.uniform(8, 30)
    elif kind == "gradient":
        g = np.linspace(-1, 1, w if rng.random() < 0.5 else h)
        g = g[None, :, None] if len(g) == w else g[:, None, None]
        img += g * rng.uniform(15, 45)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def jitter(rgb, rng):
    return tuple(int(np.clip(c + rng.randint(-22, 22), 0, 255)) for c in rgb)


def draw_shape(d, kind, cx, cy, r, fill):
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:  # an upright equilateral triangle with the same bounding height as the others
        d.polygon([(cx, cy - r), (cx - r * 1.15, cy + r), (cx + r * 1.15, cy + r)], fill=fill)


def render(rng, width, height):
    """(PIL image at width x height, shapes left to right)."""
    img = background(rng, width, height)
    n = rng.choice([1, 1, 2, 2, 3])
    cols = sorted(rng.sample(range(3), n))
    col_w = width / 3
    unit = min(col_w, height)
    shapes = []
    d = ImageDraw.Draw(img)
    for c in cols:
        size = rng.choice(vocab.SIZES)
        colour = rng.choice(vocab.SCENE_COLOURS)
        kind = rng.choice(vocab.SHAPES)
        r = unit * (rng.uniform(0.31, 0.42) if size == "large" else rng.uniform(0.16, 0.21))
        cx = col_w * c + col_w / 2 + rng.uniform(-1, 1) * max(0.0, col_w / 2 - r * 1.2)
        cy = height / 2 + rng.uniform(-1, 1) * max(0.0, height / 2 - r * 1.1)
        draw_shape(d, kind, cx, cy, r, jitter(COLOUR_RGB[colour], rng))
        shapes.append((size, colour, kind, COLUMNS[c]))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.4:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(35, 92))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img, shapes


def resize_to_budget(img, budget):
    w, h = hf_target_size(img.width, img.height, budget)
    if (w, h) == (img.width, img.height):
        return img
    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    return img.resize((w, h), bicubic, reducing_gap=None)


def scene(seed, budget=None):
    """(uint8 HWC array at the budget's size, caption, frame size) for scene `seed`."""
    rng = random.Random(seed)
    aspect = rng.choice(list(FRAME_SIZES))
    w, h = rng.choice(FRAME_SIZES[aspect])
    budget = budget or (70 if rng.random() < 0.8 else 280)
    img, shapes = render(rng, w, h)
    return np.asarray(resize_to_budget(img, budget)), caption(shapes), (w, h)


def patchify(pixels):
    """uint8 HWC image -> (tiles [N, 6912] HWC in [0, 1], xs, ys), row-major (spec §3.2)."""
    h, w, _ = pixels.shape
    gw, gh = w // TILE, h // TILE
    tiles = (pixels.reshape(gh, TILE, gw, TILE, 3).transpose(0, 2, 1, 3, 4).reshape(gh * gw, TILE * TILE * 3)
             .astype(np.float32) / 255.0)
    t = np.arange(gh * gw)
    return tiles, t % gw, t // gw


if __name__ == "__main__":
    import sys
    for s in range(int(sys.argv[1]) if len(sys.argv) > 1 else 4):
        px, cap, size = scene(s)
        Image.fromarray(px).save(f"/tmp/scene{s}.png")
        print(size, px.shape, cap)
