#!/usr/bin/env bash
# Inputs built to exhaust memory are refused with one clear message before rawflow allocates for
# them, and its peak RSS stays under a stated bound (measured with getrusage on the child):
#   GGUF: 2^40 tensors, a tensor of 2^60 elements, a 4 GiB string, a tensor past the end;
#   a PNG of 60000 x 60000, and pictures over a lowered pixel limit; WAVs at 0, 1 and 10^9 Hz and with 65535 channels; an MKV with 300
#   tracks; audio longer than a one-shot command takes; a 5 MiB "config" and /dev/zero.
# Bound: 160 MB (rawflow with the tiny model loaded peaks at 40-90 MB here); the long audio is
# decoded up to its limit first, so its bound is 400 MB (230 MB of samples at the limit; 297 MB
# measured). Tripled under AddressSanitizer (measured there: 146 MB and 695 MB).
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
work=$RAWFLOW_TEST_WORK/bombs
rm -rf "$work" && mkdir -p "$work"
RAWFLOW_BIN=$RAWFLOW_BIN "$RAWFLOW_SOURCE_DIR/scripts/make_demo_media.sh" "$work" >/dev/null
maps=(); for _ in $(seq 300); do maps+=(-map 0:a); done
ffmpeg -nostdin -loglevel error -y -f lavfi -i sine=duration=1 "${maps[@]}" -c:a aac "$work/tracks300.mkv"
# A lowered pixel limit (video.max_pixels, --max-pixels): 400x300 = 120000 pixels against 100000.
ffmpeg -nostdin -loglevel error -y -f lavfi -i color=c=blue:s=400x300 -frames:v 1 "$work/pic400x300.png"
ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=s=400x300:r=25:d=2 -c:v libx264 \
  -preset veryfast "$work/video400x300.mp4"
cat >"$work/limit.yaml" <<YAML
version: 1
streams:
  - {name: cam, url: $work/video400x300.mp4, video: {max_pixels: 100000}}
tasks:
  - {name: scene, kind: describe, interval_s: 1, image_budget: 70, max_new_tokens: 2}
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf}
outputs:
  jsonl: {path: $work/limit.jsonl}
YAML
/usr/bin/python3 - "$RAWFLOW_BIN" "$work" <<'PY'
import os, resource, struct, subprocess, sys, zlib
rawflow, work = sys.argv[1:]
def path(n): return os.path.join(work, n)
def gguf(name, tensor_count, kvs=b"", n_kv=0, infos=b"", tail=b""):
    with open(path(name), "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, tensor_count, n_kv) + kvs + infos + tail)
def gstr(s): return struct.pack("<Q", len(s)) + s
def tensor(name, dims, ggml_type=0, offset=0):
    return gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ggml_type, offset)
gguf("tensors.gguf", 1 << 40)
gguf("elements.gguf", 1, infos=tensor(b"t", [1 << 15] * 4))
gguf("string.gguf", 0, kvs=gstr(b"k") + struct.pack("<I", 8) + struct.pack("<Q", 1 << 32) + b"x" * 16, n_kv=1)
gguf("pastend.gguf", 1, infos=tensor(b"t", [1 << 20]), tail=b"\0" * 64)
def png(name, w, h):
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    open(path(name), "wb").write(data + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
png("huge.png", 60000, 60000)
def wav(name, rate, channels=1, n=100000, bits=16):
    data = b"\x10" * (n * channels * bits // 8)
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, (rate * channels * bits // 8) & 0xffffffff,
                      (channels * bits // 8) & 0xffff, bits)
    open(path(name), "wb").write(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + fmt +
                                 b"data" + struct.pack("<I", len(data)) + data)
for r in (0, 1, 1000000000): wav("rate%d.wav" % r, r)
wav("channels.wav", 16000, channels=65535, n=2)
wav("long.wav", 8000, n=8000 * 3700, bits=8)  # 1 h 1 min 40 s
open(path("big.yaml"), "w").write("# " + "x" * (5 << 20) + "\n")

model = ["--model", path("tiny.gguf"), "--mmproj", path("tiny-mmproj.gguf")]
cases = [  # (what, command, words the message must hold, bound MB)
    ("2^40 tensors", ["inspect", path("tensors.gguf")], ["tensor"], 160),
    ("2^60 elements", ["inspect", path("elements.gguf")], ["elements.gguf"], 160),
    ("4 GiB string", ["inspect", path("string.gguf")], ["string"], 160),
    ("tensor past the end", ["inspect", path("pastend.gguf")], ["pastend.gguf"], 160),
    ("60000 x 60000 PNG", ["describe"] + model + [path("huge.png")], ["huge.png", "Invalid image size"], 160),
    ("PNG over --max-pixels", ["describe"] + model + ["--max-pixels", "100000", path("pic400x300.png")],
     ["pic400x300.png", "more than 100000 pixels"], 160),
    ("video over video.max_pixels", ["run", path("limit.yaml")], ["400x300", "more than 100000 pixels"], 160),
    ("WAV at 0 Hz", ["transcribe"] + model + [path("rate0.wav")], ["rate0.wav"], 160),
    ("WAV at 1 Hz", ["transcribe"] + model + [path("rate1.wav")], ["1 Hz"], 160),
    ("WAV at 10^9 Hz", ["transcribe"] + model + [path("rate1000000000.wav")], ["1000000000 Hz"], 160),
    ("WAV with 65535 channels", ["transcribe"] + model + [path("channels.wav")], ["channels.wav"], 160),
    ("MKV with 300 tracks", ["transcribe"] + model + [path("tracks300.mkv")], ["300 streams"], 160),
    ("5 MiB config", ["run", path("big.yaml")], ["larger than 4 MiB"], 160),
    ("/dev/zero config", ["run", "/dev/zero"], ["larger than 4 MiB"], 160),
    ("audio over 1 h", ["transcribe"] + model + [path("long.wav")], ["longer than 3600 s"], 400),
]
# Under AddressSanitizer (the sanitizer run sets ASAN_OPTIONS) memory is larger by its shadow
# (1/8 of the heap), redzones and the freed-memory quarantine (256 MB): the bounds are tripled.
scale = 3 if os.environ.get("ASAN_OPTIONS") else 1
failed = []
for what, args, words, bound in cases:
    bound *= scale
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run([rawflow] + args, capture_output=True, text=True, timeout=120)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MB (max over children)
    msg = (p.stderr.strip().splitlines() or [""])[-1]
    ok = p.returncode != 0 and all(w in p.stderr for w in words) and peak <= bound
    print("%-26s exit %d, peak %5.0f MB (bound %d): %s" % (what, p.returncode, peak, bound, msg[:150]))
    if not ok:
        failed.append(what)
# ru_maxrss of RUSAGE_CHILDREN is the largest child so far: the cases run from smallest bound up.
assert not failed, failed
print("PASS")
PY
