#!/usr/bin/python3
"""The training program's forward pass on one prompt, for holding rawflow against it.

usage: /usr/bin/python3 train/forward.py --model HF_DIR --tokens IDS.txt [--audio F.f32]
           [--image F.rgb --width W --height H] --out LOGPROBS.f32

IDS.txt: the prompt's token ids (whitespace separated, as `rawflow ask --prompt-tokens-out`
writes them); F.f32: raw float32 16 kHz mono samples; F.rgb: raw uint8 RGB at a size that is a
multiple of 48 (already resized). Writes float32 natural-log softmax rows, one per prompt position,
computed in float64: the format of `rawflow ask --logprobs-out`. GELU is
evaluated as rawflow (and llama.cpp) does, through an fp16 table, unless --exact-gelu.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import model as gm  # noqa: E402
import scenes  # noqa: E402
import train  # noqa: E402
import vocab  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--audio")
    ap.add_argument("--image")
    ap.add_argument("--width", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--out", required=True)
    ap.add_argument("--exact-gelu", action="store_true",
                    help="exact tanh GELU instead of rawflow's (llama.cpp's) fp16 table")
    a = ap.parse_args()
    gm.LLAMA_GELU = not a.exact_gelu
    torch.set_num_threads(2)
    m = export.load_hf(a.model).double()  # float64: the reference's own rounding out of the way
    tok = vocab.Tokenizer()
    ids = [int(x) for x in open(a.tokens).read().replace(",", " ").split()]
    img_id, aud_id = tok.id("<|image|>"), tok.id("<|audio|>")
    types = [gm.TYPE_IMAGE if i == img_id else gm.TYPE_AUDIO if i == aud_id else gm.TYPE_TEXT for i in ids]
    soft = []
    with torch.no_grad():
        # Soft rows in order of appearance: the prompt has at most one image and one audio block.
        blocks = {}
        if a.image:
            px = np.fromfile(a.image, np.uint8).reshape(a.height, a.width, 3)
            t, x, y = scenes.patchify(px)
            blocks[gm.TYPE_IMAGE] = m.embed_tiles(torch.from_numpy(t).double(), torch.from_numpy(x).long(),
                                                  torch.from_numpy(y).long())
        if a.audio:
            blocks[gm.TYPE_AUDIO] = m.embed_audio_frames(torch.from_numpy(train.audio_frames(np.fromfile(a.audio, "<f4"))).double())
        order = []
        for t in types:
            if t != gm.TYPE_TEXT and (not order or order[-1] != t):
                order.append(t)
        soft = torch.cat([blocks[t] for t in order]) if order else torch.zeros(0, m.cfg["hidden_size"], dtype=torch.float64)
        for t in blocks:
            if int(blocks[t].shape[0]) != types.count(t):
                sys.exit(f"{a.tokens}: {types.count(t)} placeholders of type {t}, media gives {blocks[t].shape[0]} rows")
        ids_t = torch.tensor([ids])
        types_t = torch.tensor([types])
        blk = torch.where(types_t == gm.TYPE_IMAGE, 0, -1)
        logits = m(ids_t, types_t, blk, soft)[0].double()
        logits[:, [tok.id("<image|>"), tok.id("<audio|>")]] = float("-inf")  # suppressed, as rawflow does
        torch.log_softmax(logits, -1).float().numpy().tofile(a.out)


if __name__ == "__main__":
    main()
