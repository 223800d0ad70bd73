#!/usr/bin/python3
"""rawflow's bicubic antialias resize against Pillow and torchvision, measured per image.

usage: /usr/bin/python3 bench/resize_vs_torchvision.py [--rawflow BIN] [--work DIR]

BIN defaults to $RAWFLOW_BIN. Each case is a synthetic image (photo-like, gradients, noise, hard
edges) at a size and aspect ratio users send, resized to the size the HF budget policy picks (as
rawflow computes it, `rawflow inspect --image F --budget B --resized-out O`) by:

  rawflow, ResizeArithmetic::Pillow     (--resize-arithmetic pillow, rawflow's default)
  rawflow, ResizeArithmetic::TorchUint8 (--resize-arithmetic torch-uint8)
  Pillow   Image.resize(size, BICUBIC, reducing_gap=None)  (HF's PIL backend)
  torchvision resize(uint8 CHW tensor, size, BICUBIC, antialias=True)  (HF's default backend;
           transforms.v2 when this torchvision has it, as HF calls it, else transforms v1)

and prints, for each pair, the max and mean absolute difference in 8-bit levels over all values
and the share of pixels with any channel differing. It also says which code path torch took for
the uint8 tensor: the float32 path (cast, resample in float, clamp, round once) or torch's native
uint8 kernel, found by comparing with both computed explicitly.

Needs Debian's python3-numpy, python3-pil, python3-torch and python3-torchvision (run with
/usr/bin/python3). Exits 1 when a package is missing, 2 when rawflow's Pillow arithmetic is not
byte-identical to Pillow (the property docs/media.md claims).
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import PIL
    from PIL import Image
except ImportError as e:
    print(f"{e.name} is missing: apt-get install python3-numpy python3-pil (run with /usr/bin/python3)")
    sys.exit(1)
try:
    import torch
    import torchvision
except ImportError as e:
    print(f"{e.name} is missing: apt-get install python3-torchvision (Debian bookworm: torch 1.13, "
          "torchvision 0.14; pulls in python3-torch); run this script with /usr/bin/python3")
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Test images. Deterministic, uint8 RGB, HWC.

def photo(width, height, seed):
    """Photo-like: a sky/ground gradient, blurred blobs (out-of-focus areas), flat shaded objects
    with hard edges, a fine grating (fabric, fences: the aliasing case), sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    img = (np.array([95, 150, 210], np.float32) * (1 - v)[..., None]
           + np.array([70, 95, 45], np.float32) * v[..., None])
    for _ in range(10):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sigma = rng.uniform(0.03, 0.15) * max(width, height)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma))
        img += blob[..., None] * rng.uniform(-80, 80, 3).astype(np.float32)
    for _ in range(8):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.02, 0.2) * width, rng.uniform(0.02, 0.2) * height
        if rng.random() < 0.5:
            inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        else:
            inside = (np.abs(x - cx) <= rx) & (np.abs(y - cy) <= ry)
        shade = 1 + 0.3 * (x - cx) / max(rx, 1)
        img[inside] = (rng.uniform(0, 255, 3).astype(np.float32) * shade[inside][:, None])
    gx0, gy0 = int(0.6 * width), int(0.6 * height)
    period = max(2.0, width / 300)  # a few pixels: aliases when shrunk without a wide filter
    grating = 60 * np.sin(2 * np.pi * x[gy0:, gx0:] / period)
    img[gy0:, gx0:] += grating[..., None]
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def gradients(width, height, seed):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                     (x + y) * 255 // max(width + height - 2, 1)], axis=-1).astype(np.uint8)


def noise(width, height, seed):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def edges(width, height, seed):
    """Full-scale 0/255 squares of 7 px: bicubic overshoots on both sides, clamping matters."""
    y, x = np.mgrid[0:height, 0:width]
    board = (((x // 7) + (y // 7)) % 2 * 255).astype(np.uint8)
    return np.stack([board, 255 - board, board], axis=-1)


# (name, generator, source width, source height, budget). Sizes: camera and screen formats, a
# panorama, a tall screenshot, a thumbnail; ratios from ~5x down to ~7.7x up.
CASES = [
    ("photo 4032x3024 (phone 4:3)", photo, 4032, 3024, 280),
    ("photo 1920x1080", photo, 1920, 1080, 280),
    ("photo 1024x1024", photo, 1024, 1024, 280),
    ("photo 640x480 (upscaled)", photo, 640, 480, 280),
    ("photo 3000x500 (panorama 6:1)", photo, 3000, 500, 280),
    ("photo 720x1600 (tall screenshot)", photo, 720, 1600, 280),
    ("photo 1920x1080, budget 70", photo, 1920, 1080, 70),
    ("photo 1920x1080, budget 1120", photo, 1920, 1080, 1120),
    ("gradients 1920x1080", gradients, 1920, 1080, 280),
    ("gradients 100x100 (upscaled)", gradients, 100, 100, 280),
    ("noise 1920x1080", noise, 1920, 1080, 280),
    ("noise 333x251 (upscaled)", noise, 333, 251, 280),
    ("edges 1280x720", edges, 1280, 720, 280),
    ("edges 640x480 (upscaled)", edges, 640, 480, 280),
]


# ---------------------------------------------------------------------------------------------
# The four resizers.

def rawflow_resize(binary, png, budget, arithmetic, out):
    """rawflow's pixels and the target size it chose."""
    result = subprocess.run([binary, "inspect", "--image", png, "--budget", str(budget),
                             "--resized-out", out, "--resize-arithmetic", arithmetic],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"rawflow inspect failed on {png}: {result.stderr.strip()}")
    # "image F: WxH -> W2xH2 (...)"
    size = result.stdout.split("->")[1].split()[0]
    width, height = (int(s) for s in size.split("x"))
    return np.fromfile(out, np.uint8).reshape(height, width, 3)


def pillow_resize(img, width, height):
    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    out = Image.fromarray(img, "RGB").resize((width, height), bicubic, reducing_gap=None)
    return np.asarray(out)


def torchvision_functional():
    """The resize HF calls (torchvision.transforms.v2.functional) when this torchvision has it."""
    try:
        from torchvision.transforms.v2 import functional as tvf
        return tvf, "torchvision.transforms.v2.functional.resize"
    except ImportError:
        from torchvision.transforms import functional as tvf
        return tvf, "torchvision.transforms.functional.resize (no transforms.v2 in this version)"


def torchvision_resize(tvf, img, width, height):
    from torchvision.transforms import InterpolationMode
    chw = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()
    out = tvf.resize(chw, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return out.permute(1, 2, 0).contiguous().numpy()


def torch_float_path(img, width, height):
    """uint8 -> float32, separable antialiased bicubic in float, clamp, round half to even."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    y = torch.nn.functional.interpolate(x, size=[height, width], mode="bicubic",
                                        align_corners=False, antialias=True)
    return y.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()


def torch_native_uint8(img, width, height):
    """torch's uint8 kernel, or None when this torch has none (1.13: 'compute_indices_weights_aa'
    not implemented for 'Byte')."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].contiguous()
    try:
        y = torch.nn.functional.interpolate(x, size=[height, width], mode="bicubic",
                                            align_corners=False, antialias=True)
    except RuntimeError:
        return None
    return y[0].permute(1, 2, 0).contiguous().numpy()


# The cause of the differences: the same filter in float64, once with a clamped, rounded uint8 image
# between the two passes (Pillow's and torch's uint8 scheme), once rounded only at the end
# (torchvision's float32 path). Weights are Pillow's precompute_coeffs, normalised, not quantised.

def keys_cubic(x):
    x = np.abs(x)
    a = -0.5
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def pass_taps(n_in, n_out):
    """(first input index [n_out], weights [n_out, taps]) of one antialiased bicubic pass."""
    scale = n_in / n_out
    filter_scale = max(scale, 1.0)
    support = 2.0 * filter_scale
    taps = int(np.ceil(support)) * 2 + 2
    center = (np.arange(n_out) + 0.5) * scale
    first = np.maximum((center - support + 0.5).astype(np.int64), 0)
    last = np.minimum((center + support + 0.5).astype(np.int64), n_in)
    k = np.arange(taps)
    valid = k[None, :] < (last - first)[:, None]
    # Same operations in the same order as the C code: multiply by the inverse scale, sum the taps
    # left to right (cumsum; numpy's sum would add in pairs and move the last bit).
    inv_scale = 1.0 / filter_scale
    w = np.where(valid, keys_cubic((first[:, None] + k[None, :] - center[:, None] + 0.5) * inv_scale), 0.0)
    return first, w / np.cumsum(w, axis=1)[:, -1:]


def apply_pass(img, first, w, axis):
    """img float64 HWC; resamples `axis` (1 = horizontal, 0 = vertical)."""
    n_in = img.shape[axis]
    out = 0.0
    for k in range(w.shape[1]):
        idx = np.minimum(first + k, n_in - 1)  # zero weight wherever the clip matters
        taken = np.take(img, idx, axis=axis)
        shape = [1, 1, 1]
        shape[axis] = -1
        out = out + taken * w[:, k].reshape(shape)
    return out


def float64_two_pass(img, width, height, uint8_between):
    x = img.astype(np.float64)
    if width != img.shape[1]:
        x = apply_pass(x, *pass_taps(img.shape[1], width), axis=1)
        if uint8_between:
            x = np.clip(np.floor(x + 0.5), 0, 255)
    if height != img.shape[0]:
        x = apply_pass(x, *pass_taps(img.shape[0], height), axis=0)
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def torch_uint8_transcribed(img, width, height):
    """PyTorch's uint8 antialiased bicubic, transcribed in numpy from its source (UpSampleKernel.cpp:
    _compute_indices_min_size_weights_aa, _compute_index_ranges_int16_weights, the uint8
    basic_loop_aa_horizontal / _vertical; the AVX2 kernels compute the same integers): weights in
    double, normalised; per pass a precision p = the largest value below 22 with
    (int)(0.5 + max weight * 2^(p+1)) < 2^15; weights (int)(w * 2^p -/+ 0.5) (truncation); each
    output = clamp((2^(p-1) + sum weight * pixel) >> p, 0, 255), horizontal pass first. Written
    apart from rawflow's C++ port, for a second reading where this torch has no uint8 kernel."""
    def quantised(n_in, n_out):
        first, w = pass_taps(n_in, n_out)
        precision = 0
        while precision < 22 and int(0.5 + w.max() * (1 << (precision + 1))) < (1 << 15):
            precision += 1
        v = w * (1 << precision)
        return first, np.trunc(np.where(v < 0, v - 0.5, v + 0.5)).astype(np.int64), precision

    def int_pass(x, n_out, axis):
        first, w, precision = quantised(x.shape[axis], n_out)
        acc = np.int64(1 << (precision - 1))
        for k in range(w.shape[1]):
            taken = np.take(x, np.minimum(first + k, x.shape[axis] - 1), axis=axis)
            shape = [1, 1, 1]
            shape[axis] = -1
            acc = acc + taken * w[:, k].reshape(shape)
        return np.clip(acc >> precision, 0, 255)

    x = img.astype(np.int64)
    if width != img.shape[1]:
        x = int_pass(x, width, axis=1)
    if height != img.shape[0]:
        x = int_pass(x, height, axis=0)
    return x.astype(np.uint8)


# ---------------------------------------------------------------------------------------------

def difference(a, b):
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(d.max()), float(d.mean()), 100.0 * float((d.max(axis=2) > 0).mean())


def cell(diff):
    mx, mean, pct = diff
    if mx == 0:
        return "0"
    return f"{mx} / {mean:.4f} / {pct:.2f} %"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rawflow", default=os.environ.get("RAWFLOW_BIN"),
                        help="the rawflow binary (default $RAWFLOW_BIN)")
    parser.add_argument("--work", help="directory for the images (default: a temporary one)")
    args = parser.parse_args()
    if not args.rawflow or not os.access(args.rawflow, os.X_OK):
        print("give the rawflow binary: --rawflow BIN or RAWFLOW_BIN=BIN", file=sys.stderr)
        return 1
    torch.set_num_threads(2)
    tvf, tv_name = torchvision_functional()
    print(f"numpy {np.__version__}, Pillow {PIL.__version__}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}; torchvision call: {tv_name}")

    work = args.work or tempfile.mkdtemp(prefix="resize-vs-torchvision-")
    os.makedirs(work, exist_ok=True)
    header = ("| case | target (budget) | rawflow Pillow vs Pillow | rawflow TorchUint8 vs Pillow "
              "| rawflow Pillow vs torchvision | rawflow TorchUint8 vs torchvision "
              "| rawflow TorchUint8 vs torch's uint8 kernel |")
    print("\ncells: max |delta| (8-bit levels) / mean |delta| over all values / pixels with any "
          "channel differing; 0 = byte-identical\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    paths = set()
    pillow_exact = True
    causes = []
    for i, (name, make, width, height, budget) in enumerate(CASES):
        img = make(width, height, 1000 + i)
        png = os.path.join(work, f"case{i}.png")
        Image.fromarray(img, "RGB").save(png)
        rf_pillow = rawflow_resize(args.rawflow, png, budget, "pillow",
                                   os.path.join(work, f"case{i}.pillow.rgb"))
        th, tw = rf_pillow.shape[:2]
        rf_torch = rawflow_resize(args.rawflow, png, budget, "torch-uint8",
                                  os.path.join(work, f"case{i}.torch-uint8.rgb"))
        pil = pillow_resize(img, tw, th)
        tv = torchvision_resize(tvf, img, tw, th)
        native = torch_native_uint8(img, tw, th)
        if np.array_equal(tv, torch_float_path(img, tw, th)):
            paths.add("float32 path (uint8 cast to float32, one rounding at the end)")
        elif native is not None and np.array_equal(tv, native):
            paths.add("native uint8 kernel (int16 weights, uint8 between the passes)")
        else:
            paths.add("neither the float32 path nor the uint8 kernel computed here")
        if native is None:
            native_cell = cell(difference(rf_torch, torch_uint8_transcribed(img, tw, th))) + " (transcribed)"
        else:
            native_cell = cell(difference(rf_torch, native))
        between = float64_two_pass(img, tw, th, uint8_between=True)
        once = float64_two_pass(img, tw, th, uint8_between=False)
        causes.append(f"| {name} | {cell(difference(between, pil))} | {cell(difference(once, tv))} "
                      f"| {cell(difference(between, once))} |")
        a = difference(rf_pillow, pil)
        pillow_exact &= a[0] == 0
        print(f"| {name} | {tw}x{th} ({budget}) | {cell(a)} | {cell(difference(rf_torch, pil))} "
              f"| {cell(difference(rf_pillow, tv))} | {cell(difference(rf_torch, tv))} "
              f"| {native_cell} |", flush=True)
    print(f"\ntorchvision's path on uint8 input here: {'; '.join(sorted(paths))}")
    if native is None:
        print("this torch has no uint8 antialias kernel ('compute_indices_weights_aa' not implemented "
              "for 'Byte'): the last column compares with torch_uint8_transcribed(), a numpy "
              "transcription of that kernel from PyTorch's source, not with PyTorch")
    print("\nwhy: the same filter in float64 (no weight quantisation), with a clamped, rounded "
          "uint8 image between the passes (a) or rounded once at the end (b)\n")
    print("| case | (a) vs Pillow | (b) vs torchvision | (a) vs (b) |\n|---|---|---|---|")
    print("\n".join(causes))
    if not pillow_exact:
        print("UNEXPECTED: rawflow's Pillow arithmetic is not byte-identical to Pillow")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
