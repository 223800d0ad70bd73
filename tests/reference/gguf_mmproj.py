#!/usr/bin/python3
"""Does a llama.cpp `clip` mmproj GGUF hold the same embedder weights as a Hugging Face directory?

    same-weights --gguf FILE --model DIR

Reads every gemma4uv / gemma4ua tensor of FILE and the matching tensor of DIR (on-disk or
current transformers names, as gemma4_ref.py accepts them) and checks, from the spec's §7.4 table
(written from the spec, not from rawflow's sources):

  v.patch_norm.1.{weight,bias} [6912]     = patch_ln1 with entries permuted HWC -> CHW:
                                            gguf[i] = hf[perm[i]], i = ch*2304 + r*48 + c,
                                            perm[i] = r*144 + c*3 + ch
  v.patch_embd.weight  ne [6912, D]       = patch_dense.weight [D, 6912], columns permuted by perm
  v.patch_embd.bias, v.patch_norm.2.*     = patch_dense.bias, patch_ln2.*
  v.position_embd.weight ne [D, P, 2]     = pos_embedding [P, 2, D] as [2, P, D] (x table, then y)
  v.patch_norm.3.*                        = pos_norm.*
  mm.input_projection.weight ne [D, out]  = embed_vision embedding_projection [out, D], as is
  mm.a.input_projection.weight ne [640, out] = embed_audio embedding_projection [out, 640], as is

Equality is exact: both files must hold the same numbers (a model written twice from one seed,
e.g. `rawflow model synth --seed S` in both formats with F32 embedders). Prints one line per tensor
and exits 1 at the first difference (naming the tensor, the index and both values), a missing
tensor, a wrong shape or an unreadable file. GGUF tensor types read: F32, F16, BF16.
"""

import argparse
import os
import struct
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gemma4_ref import (AUDIO_PROJ_NAMES, TILE, TILE_VALUES, VISION_NAMES,  # noqa: E402
                        BadInput, SafetensorsDir)

# ---------------------------------------------------------------------------------------------
# GGUF (v2/v3): header, metadata, tensor infos, aligned data


GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
                11: "<q", 12: "<d"}
GGUF_STRING, GGUF_ARRAY = 8, 9
GGUF_TENSOR_TYPES = {0: ("F32", np.dtype("<f4")), 1: ("F16", np.dtype("<f2")),
                     30: ("BF16", np.dtype("<u2"))}


class GgufFile:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        self.at = 0
        if self._take(4) != b"GGUF":
            raise BadInput(f"{path}: not a GGUF file (magic)")
        (version,) = self._unpack("<I")
        if version not in (2, 3):
            raise BadInput(f"{path}: GGUF version {version}, expected 2 or 3")
        n_tensors, n_kv = self._unpack("<QQ")
        self.metadata = {}
        for _ in range(n_kv):
            key = self._string()
            (vtype,) = self._unpack("<I")
            self.metadata[key] = self._value(vtype)
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            (n_dims,) = self._unpack("<I")
            ne = list(self._unpack(f"<{n_dims}Q"))
            ttype, offset = self._unpack("<IQ")
            infos.append((name, ne, ttype, offset))
        alignment = int(self.metadata.get("general.alignment", 32))
        data_start = -(-self.at // alignment) * alignment
        self.tensors = {name: (ne, ttype, data_start + offset) for name, ne, ttype, offset in infos}

    def _take(self, n):
        if self.at + n > len(self.data):
            raise BadInput(f"{self.path}: truncated at byte {self.at}")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def _unpack(self, fmt):
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))

    def _string(self):
        (n,) = self._unpack("<Q")
        return self._take(n).decode("utf-8")

    def _value(self, vtype):
        if vtype in GGUF_SCALARS:
            return self._unpack(GGUF_SCALARS[vtype])[0]
        if vtype == GGUF_STRING:
            return self._string()
        if vtype == GGUF_ARRAY:
            item_type, n = self._unpack("<IQ")
            return [self._value(item_type) for _ in range(n)]
        raise BadInput(f"{self.path}: metadata value type {vtype} unknown at byte {self.at}")

    def get(self, name):
        """float64 array shaped like numpy sees ggml's ne (reversed: ne[0] innermost)."""
        if name not in self.tensors:
            raise BadInput(f"{self.path}: tensor {name} missing")
        ne, ttype, start = self.tensors[name]
        if ttype not in GGUF_TENSOR_TYPES:
            raise BadInput(f"{self.path}: tensor {name}: type {ttype} not read here (F32/F16/BF16)")
        kind, dtype = GGUF_TENSOR_TYPES[ttype]
        count = int(np.prod(ne, dtype=np.int64))
        end = start + count * dtype.itemsize
        if end > len(self.data):
            raise BadInput(f"{self.path}: tensor {name} ends at {end}, past the file ({len(self.data)} B)")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=start)
        if kind == "BF16":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(np.float64).reshape(list(reversed(ne)))


# ---------------------------------------------------------------------------------------------
# §7.4


def hwc_of_chw():
    """perm[i] for CHW index i = ch*2304 + r*48 + c: the HWC index r*144 + c*3 + ch."""
    i = np.arange(TILE_VALUES)
    ch, r, c = i // (TILE * TILE), (i % (TILE * TILE)) // TILE, i % TILE
    return r * (TILE * 3) + c * 3 + ch


def expected_pairs(hf):
    """(gguf name, what the GGUF tensor must equal, computed from the HF tensor)."""
    perm = hwc_of_chw()
    pairs = [
        ("v.patch_norm.1.weight", hf.first(VISION_NAMES["ln1.w"])[perm]),
        ("v.patch_norm.1.bias", hf.first(VISION_NAMES["ln1.b"])[perm]),
        ("v.patch_embd.weight", hf.first(VISION_NAMES["dense.w"])[:, perm]),
        ("v.patch_embd.bias", hf.first(VISION_NAMES["dense.b"])),
        ("v.patch_norm.2.weight", hf.first(VISION_NAMES["ln2.w"])),
        ("v.patch_norm.2.bias", hf.first(VISION_NAMES["ln2.b"])),
        ("v.position_embd.weight", hf.first(VISION_NAMES["pos"]).transpose(1, 0, 2)),
        ("v.patch_norm.3.weight", hf.first(VISION_NAMES["ln3.w"])),
        ("v.patch_norm.3.bias", hf.first(VISION_NAMES["ln3.b"])),
        ("mm.input_projection.weight", hf.first(VISION_NAMES["proj"])),
        ("mm.a.input_projection.weight", hf.first(AUDIO_PROJ_NAMES)),
    ]
    return pairs


def cmd_same_weights(args):
    gguf = GgufFile(args.gguf)
    hf = SafetensorsDir(args.model)
    for name, want in expected_pairs(hf):
        got = gguf.get(name)
        if got.shape != want.shape:
            raise BadInput(f"{args.gguf}: {name} has shape {list(got.shape)} (numpy order), "
                           f"the HF tensor gives {list(want.shape)}")
        diff = np.flatnonzero(got.ravel() != want.ravel())
        if diff.size:
            k = int(diff[0])
            raise BadInput(f"{name}: {diff.size} of {got.size} values differ from the HF tensor, "
                           f"first at flat index {k}: gguf {got.ravel()[k]!r}, hf {want.ravel()[k]!r}")
        print(f"{name} {list(got.shape)}: {got.size} values equal")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("same-weights", help="GGUF clip file vs HF directory, tensor by tensor")
    p.add_argument("--gguf", required=True)
    p.add_argument("--model", required=True, help="HF directory (config.json + *.safetensors)")
    p.set_defaults(run=cmd_same_weights)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (BadInput, OSError, UnicodeDecodeError) as err:
        print(f"gguf_mmproj: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
