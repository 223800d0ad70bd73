#!/usr/bin/python3
"""Reference resizes for tests/test_media_prep.cpp: Pillow's bicubic (antialiased) resize.

usage: pil_resize.py IN W H OUT W2 H2 [IN W H OUT W2 H2 ...]

Each IN is raw 8-bit RGB (W·H·3 bytes, rows top to bottom); OUT receives the W2×H2 result of
Image.resize((W2, H2), BICUBIC, reducing_gap=None), raw RGB as well. Run with /usr/bin/python3
(Debian's python3-pil). Prints the Pillow version; exits non-zero on any error.
"""
import sys

import PIL
from PIL import Image


def resize_one(src, width, height, dst, out_width, out_height):
    with open(src, "rb") as f:
        data = f.read()
    if len(data) != width * height * 3:
        raise ValueError(f"{src}: {len(data)} bytes, expected {width}x{height}x3")
    image = Image.frombytes("RGB", (width, height), data)
    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    out = image.resize((out_width, out_height), bicubic, reducing_gap=None)
    with open(dst, "wb") as f:
        f.write(out.tobytes())


def main(args):
    if not args or len(args) % 6:
        print(__doc__, file=sys.stderr)
        return 2
    for i in range(0, len(args), 6):
        src, w, h, dst, w2, h2 = args[i : i + 6]
        resize_one(src, int(w), int(h), dst, int(w2), int(h2))
    print(f"Pillow {PIL.__version__}: {len(args) // 6} images resized")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
