#!/usr/bin/python3
"""Self-check of gemma4_ref.py's multimodal parts, without rawflow.

Builds a small random Hugging Face directory (config.json + model.safetensors with decoder,
vision and audio tensors under their HF names, small sizes) and checks invariants that a layout
bug would break: the HWC tile layout and row-major token order, x = column / y = row, per-tile
independence, audio framing and padding, the attention masks of a prompt with two images and an
audio clip against hand-written matrices, and that those masks act in the whole forward pass.
Prints what it checks; exits 1 on the first failure.
"""

import json
import os
import struct
import sys
import tempfile

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemma4_ref as ref  # noqa: E402

HIDDEN, VISION_D, VOCAB = 32, 16, 64
IMAGE_ID, AUDIO_ID, VIDEO_ID, BOI, EOI, BOA, EOA = 60, 61, 62, 50, 51, 52, 53


def check(condition, what):
    if not condition:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok   {what}")


def write_safetensors(path, tensors, dtypes=None):
    """tensors: name -> float array; dtypes: name -> F32 (default) / F16 / BF16."""
    dtypes = dtypes or {}
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        dtype = dtypes.get(name, "F32")
        v = np.ascontiguousarray(value, dtype=np.float32)
        if dtype == "F32":
            raw = v.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = v.astype("<f2").tobytes()
        else:  # BF16 by truncation: exact for the values the tests choose
            raw = (v.view(np.uint32) >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def make_model(directory, rng, zero_y_table=False):
    layer_types = ["sliding_attention", "full_attention"]
    config = {
        "model_type": "gemma4_unified",
        "tie_word_embeddings": True,
        "image_token_id": IMAGE_ID, "audio_token_id": AUDIO_ID, "video_token_id": VIDEO_ID,
        "text_config": {
            "hidden_size": HIDDEN, "num_hidden_layers": 2, "layer_types": layer_types, "sliding_window": 4,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "global_head_dim": 16,
            "num_global_key_value_heads": 1, "attention_k_eq_v": True, "vocab_size": VOCAB,
            "intermediate_size": 48, "rms_norm_eps": 1e-6, "final_logit_softcapping": 30.0,
            "hidden_activation": "gelu_pytorch_tanh",
            "rope_parameters": {
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                   "rope_theta": 1000000.0},
            },
        },
        "vision_config": {"rms_norm_eps": 1e-6},
        "audio_config": {"audio_samples_per_token": 640},
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)

    def r(*shape, std=0.3):
        return rng.normal(0.0, std, shape)

    t = {"model.language_model.embed_tokens.weight": r(VOCAB, HIDDEN, std=1.0),
         "model.language_model.norm.weight": 1.0 + r(HIDDEN, std=0.1)}
    for i, kind in enumerate(layer_types):
        p = f"model.language_model.layers.{i}."
        d = 16 if kind == "full_attention" else 8
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            t[p + n + ".weight"] = 1.0 + r(HIDDEN, std=0.1)
        t[p + "self_attn.q_proj.weight"] = r(2 * d, HIDDEN)
        t[p + "self_attn.k_proj.weight"] = r(d, HIDDEN)
        if kind == "sliding_attention":
            t[p + "self_attn.v_proj.weight"] = r(d, HIDDEN)
        t[p + "self_attn.o_proj.weight"] = r(HIDDEN, 2 * d)
        t[p + "self_attn.q_norm.weight"] = 1.0 + r(d, std=0.1)
        t[p + "self_attn.k_norm.weight"] = 1.0 + r(d, std=0.1)
        t[p + "mlp.gate_proj.weight"] = r(48, HIDDEN)
        t[p + "mlp.up_proj.weight"] = r(48, HIDDEN)
        t[p + "mlp.down_proj.weight"] = r(HIDDEN, 48)
        t[p + "layer_scalar"] = np.array([0.7])
    pos = r(ref.POS_TABLE_ROWS, 2, VISION_D, std=1.0)
    if zero_y_table:
        pos[:, 1, :] = 0.0
    t.update({
        "model.vision_embedder.patch_ln1.weight": 1.0 + r(ref.TILE_VALUES, std=0.1),
        "model.vision_embedder.patch_ln1.bias": r(ref.TILE_VALUES, std=0.1),
        "model.vision_embedder.patch_dense.weight": r(VISION_D, ref.TILE_VALUES, std=0.02),
        "model.vision_embedder.patch_dense.bias": r(VISION_D, std=0.1),
        "model.vision_embedder.patch_ln2.weight": 1.0 + r(VISION_D, std=0.1),
        "model.vision_embedder.patch_ln2.bias": r(VISION_D, std=0.1),
        "model.vision_embedder.pos_embedding": pos,
        "model.vision_embedder.pos_norm.weight": 1.0 + r(VISION_D, std=0.1),
        "model.vision_embedder.pos_norm.bias": r(VISION_D, std=0.1),
        # the alternative (current transformers) name for one of the two projections (§10.4)
        "model.embed_vision.multimodal_embedder.embedding_projection.weight": r(HIDDEN, VISION_D),
        "model.embed_audio.embedding_projection.weight": r(HIDDEN, 640, std=0.05),
    })
    # one F16 and one BF16 tensor so the reader's widening is exercised on real data
    dtypes = {"model.vision_embedder.patch_dense.bias": "F16", "model.language_model.norm.weight": "BF16"}
    write_safetensors(os.path.join(directory, "model.safetensors"), t, dtypes)
    return t


def check_reader(directory, written):
    tensors = ref.SafetensorsDir(directory)
    for name in ("model.vision_embedder.pos_embedding", "model.vision_embedder.patch_dense.bias",
                 "model.language_model.norm.weight"):
        want = np.asarray(written[name], dtype=np.float32)
        if name.endswith("patch_dense.bias"):
            want = want.astype(np.float16).astype(np.float32)
        if name.endswith("norm.weight"):
            want = ((want.view(np.uint32) >> 16) << 16).view(np.float32)
        check(np.array_equal(tensors.get(name), want.astype(np.float64)), f"safetensors reader: {name} read back exactly")


def check_patch_layout():
    # 3 tiles wide, 2 tall: one lit value at image row 48+5, column 96+7, channel G
    w, h = 144, 96
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[48 + 5, 96 + 7, 1] = 255
    tiles, xs, ys = ref.patchify(img.reshape(-1), w, h)
    check(tiles.shape == (6, ref.TILE_VALUES), "patchify: 144x96 gives 6 tiles of 6912")
    t = 1 * 3 + 2  # row-major: gy = 1, gx = 2
    lit = np.argwhere(tiles != 0)
    check(lit.tolist() == [[t, (5 * 48 + 7) * 3 + 1]], "patchify: pixel (r 5, c 7, G) of tile (gx 2, gy 1) -> token 5, HWC index (5*48+7)*3+1")
    check(list(xs) == [0, 1, 2, 0, 1, 2] and list(ys) == [0, 0, 0, 1, 1, 1], "patchify: x = column, y = row, x fastest")


def check_vision(directory, directory_zero_y, rng):
    cfg = ref.TextConfig(os.path.join(directory, "config.json"))
    vision = ref.VisionEmbedder(ref.SafetensorsDir(directory), cfg.hidden, cfg.vision_rms_eps)
    w, h = 144, 96
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rows = vision.embed_image(img.reshape(-1), w, h)
    check(rows.shape == (6, HIDDEN), "vision: 6 rows of the text hidden size")

    # each row is its own tile through the embedder at its own (x, y)
    tiles, xs, ys = ref.patchify(img.reshape(-1), w, h)
    alone = np.concatenate([vision.embed_tiles(tiles[i:i + 1], [i % 3], [i // 3]) for i in range(6)])
    check(np.allclose(rows, alone, rtol=0, atol=1e-12), "vision: row t = embedder(tile t alone, x = t % 3, y = t // 3)")

    # changing one tile's pixels changes its row only
    changed = img.copy()
    changed[48:96, 48:96, :] = 255 - changed[48:96, 48:96, :]  # tile gx 1, gy 1 = token 4
    rows2 = vision.embed_image(changed.reshape(-1), w, h)
    moved = [i for i in range(6) if not np.allclose(rows[i], rows2[i], rtol=0, atol=1e-12)]
    check(moved == [4], "vision: inverting tile (gx 1, gy 1) changes row 4 and no other")

    # swapping two tiles' pixels and positions swaps the rows; swapping pixels alone does not
    a, b = 0, 5
    order = list(range(6))
    order[a], order[b] = b, a
    swapped = vision.embed_tiles(tiles[order], xs[order], ys[order])
    check(np.allclose(swapped, rows[order], rtol=0, atol=1e-12), "vision: tiles 0 and 5 with their positions swapped -> rows swapped")
    pix_swapped = img.copy()
    pix_swapped[0:48, 0:48], pix_swapped[48:96, 96:144] = img[48:96, 96:144], img[0:48, 0:48]
    rows3 = vision.embed_image(pix_swapped.reshape(-1), w, h)
    check(np.allclose(rows3[a], vision.embed_tiles(tiles[b:b + 1], [0], [0])[0], rtol=0, atol=1e-12)
          and not np.allclose(rows3[a], rows[b], rtol=0, atol=1e-6),
          "vision: tile 5's pixels moved to (0, 0) embed with position (0, 0), not their old one")

    # x indexes slice 0, y slice 1: with the y table zeroed, a uniform image's rows depend on the column only
    vision0 = ref.VisionEmbedder(ref.SafetensorsDir(directory_zero_y), cfg.hidden, cfg.vision_rms_eps)
    flat = np.full((h, w, 3), 128, dtype=np.uint8)
    r0 = vision0.embed_image(flat.reshape(-1), w, h)
    same_column = all(np.allclose(r0[c], r0[c + 3], rtol=0, atol=1e-12) for c in range(3))
    columns_differ = not np.allclose(r0[0], r0[1], rtol=0, atol=1e-6) and not np.allclose(r0[1], r0[2], rtol=0, atol=1e-6)
    check(same_column and columns_differ, "vision: pos_embedding[:, 0] is the x (column) table, [:, 1] the y (row) table")


def check_audio(directory, rng):
    cfg = ref.TextConfig(os.path.join(directory, "config.json"))
    audio = ref.AudioEmbedder(ref.SafetensorsDir(directory), cfg.hidden, cfg.audio_frame)
    clip = np.concatenate([rng.normal(0, 0.1, 640), np.zeros(640), rng.normal(0, 0.1, 60)]).astype(np.float32)
    rows = audio.embed(clip)
    check(rows.shape == (3, HIDDEN), "audio: 1340 samples -> ceil(1340/640) = 3 rows")
    check(not rows[1].any(), "audio: an all-zero frame maps to the zero vector")
    last = np.zeros(640)
    last[:60] = clip[1280:]
    check(np.allclose(rows[2], audio.embed_frames(last[None, :])[0], rtol=0, atol=1e-12),
          "audio: the last frame is the 60 remaining samples zero-padded on the right")
    check(audio.embed(np.zeros(640)).shape == (1, HIDDEN) and audio.embed(np.ones(641)).shape == (2, HIDDEN),
          "audio: 640 samples -> 1 row, 641 -> 2 (padding never adds a frame)")
    loud = audio.embed(clip[:640] * 10.0)[0]
    # eps 1e-6 next to a mean square of ~0.01 (std 0.1) moves the scale by ~5e-5 relative
    check(np.allclose(loud, rows[0], rtol=1e-3, atol=0) and not np.allclose(loud, 10.0 * rows[0], rtol=0.5, atol=0),
          "audio: a frame x10 gives the same row (unit-RMS norm, weightless)")


def mask_text(allowed):
    return ["".join("#" if v else "." for v in row) for row in allowed]


# 0 <bos> 1 <|image> 2-3 image A 4 <image|> 5 text 6 <|image> 7-9 image B 10 <image|>
# 11 <|audio> 12-14 audio 15 <audio|>
MASK_PROMPT = [2, BOI, IMAGE_ID, IMAGE_ID, EOI, 7, BOI, IMAGE_ID, IMAGE_ID, IMAGE_ID, EOI,
               BOA, AUDIO_ID, AUDIO_ID, AUDIO_ID, EOA]
# Written by hand from §2.8, window 4: key k visible from query q iff q-4 < k and (k <= q or both
# in the same image block); audio (12-14) is causal like text.
SLIDING_W4 = [
    "#...............",
    "##..............",
    "####............",
    "####............",
    ".####...........",
    "..####..........",
    "...####.........",
    "....######......",
    ".....#####......",
    "......####......",
    ".......####.....",
    "........####....",
    ".........####...",
    "..........####..",
    "...........####.",
    "............####",
]
FULL_BIDIRECTIONAL = [  # the llama.cpp-parity switch: block rule on full layers, no window
    "#...............",
    "##..............",
    "####............",
    "####............",
    "#####...........",
    "######..........",
    "#######.........",
    "##########......",
    "##########......",
    "##########......",
    "###########.....",
    "############....",
    "#############...",
    "##############..",
    "###############.",
    "################",
]
# window 2 on the 3-token block 7-9: a soft token still sees later block tokens, but not block
# tokens 2 or more positions behind it (§2.8 edge case)
SLIDING_W2_ROWS_7_TO_9 = [
    "......####......",
    ".......###......",
    "........##......",
]


def check_masks():
    types = ref.token_types(MASK_PROMPT, IMAGE_ID, AUDIO_ID, VIDEO_ID)
    sliding = ref.attention_mask(types, True, 4, True)
    full = ref.attention_mask(types, False, 4, False)
    full_bidir = ref.attention_mask(types, False, 4, True)
    print("     prompt: bos boi I I eoi txt boi I I I eoi boa A A A eoa; sliding layers, window 4:")
    for line in mask_text(sliding):
        print("       " + line)
    check(mask_text(sliding) == SLIDING_W4, "masks: sliding layers (window 4, image blocks bidirectional) = hand-written")
    check(np.array_equal(full, np.tril(np.ones((16, 16), dtype=bool))), "masks: full layers = plain causal (HF generation)")
    check(mask_text(full_bidir) == FULL_BIDIRECTIONAL, "masks: full layers with bidirectional_full_layers = hand-written")
    check(mask_text(ref.attention_mask(types, True, 2, True))[7:10] == SLIDING_W2_ROWS_7_TO_9,
          "masks: window 2 shorter than a block: later block tokens stay visible, older ones do not")
    video = ref.token_types([VIDEO_ID, VIDEO_ID, 7, VIDEO_ID, IMAGE_ID], IMAGE_ID, AUDIO_ID, VIDEO_ID)
    check(list(ref.vision_blocks(video)) == [0, 0, -1, 1, 2], "masks: video runs are blocks; a type change starts a new block")


def check_rope():
    omega = ref.rope_frequencies({"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                  "rope_theta": 1e6}, 16, "full_attention")
    # int(0.25 * 16 // 2) = 2 pairs rotate, with the FULL head dim (16) in the exponent
    want = np.array([1.0, 1e6 ** (-2 / 16), 0, 0, 0, 0, 0, 0])
    check(np.allclose(omega, want, rtol=1e-15, atol=0), "rope: proportional 0.25 on D=16 -> 2 rotating pairs, base^(-2i/16)")
    u = np.arange(16, dtype=np.float64)[None, None, :] + 1.0
    rotated = ref.apply_rope(u, np.array([5]), omega)[0, 0]
    still = [i for i in range(16) if i not in (0, 1, 8, 9)]
    check(np.array_equal(rotated[still], u[0, 0, still]) and not np.allclose(rotated[[0, 1, 8, 9]], u[0, 0, [0, 1, 8, 9]]),
          "rope: only dims (0, 8) and (1, 9) rotate (NeoX pairs i, i+D/2)")
    check(np.isclose(rotated[0], 1 * np.cos(5) - 9 * np.sin(5)) and np.isclose(rotated[8], 9 * np.cos(5) + 1 * np.sin(5)),
          "rope: (u0, u8) <- (u0 cos - u8 sin, u8 cos + u0 sin) at p = 5, w = 1")


def check_forward(directory, rng):
    """The masks act in the whole pass: which logits move when a later input changes."""
    work = os.path.dirname(directory)
    img_a, img_b = (rng.integers(0, 256, (48, 96, 3), dtype=np.uint8), rng.integers(0, 256, (48, 144, 3), dtype=np.uint8))
    clip = rng.normal(0, 0.1, 3 * 640).astype(np.float32)
    paths = {}
    for name, data in (("a.rgb", img_a), ("b.rgb", img_b), ("clip.f32", clip)):
        paths[name] = os.path.join(work, name)
        data.tofile(paths[name])
    tokens = [2, 5, BOI] + [IMAGE_ID] * 2 + [EOI, 9, BOI] + [IMAGE_ID] * 3 + [EOI, 11, BOA] + [AUDIO_ID] * 3 + [EOA, 12]
    request = {"tokens": tokens, "image_token_id": IMAGE_ID, "audio_token_id": AUDIO_ID, "video_token_id": VIDEO_ID,
               "images": [{"pixels": paths["a.rgb"], "width": 96, "height": 48},
                          {"pixels": paths["b.rgb"], "width": 144, "height": 48}],
               "audios": [{"samples": paths["clip.f32"]}], "suppress_ids": [EOI, EOA]}
    base = ref.run_request(directory, request)
    check(base.shape == (len(tokens), VOCAB) and np.isneginf(base[:, [EOI, EOA]]).all()
          and np.allclose(np.exp(base).sum(axis=1), 1.0, rtol=0, atol=1e-12),
          "forward: one normalised row per position, suppressed ids -inf")

    # attention runs queries in blocks against the key span their masks allow; with blocks of 4
    # (windows, block overlaps, spans cut mid-image) the result must be the one-block result
    saved = ref.ATTENTION_QUERY_BLOCK
    ref.ATTENTION_QUERY_BLOCK = 4
    blocked = ref.run_request(directory, request)
    ref.ATTENTION_QUERY_BLOCK = saved
    finite = np.isfinite(base)
    check(np.array_equal(finite, np.isfinite(blocked)) and np.allclose(base[finite], blocked[finite], rtol=0, atol=1e-12),
          "forward: query blocks of 4 give the single-block result (to 1e-12)")

    cfg = ref.TextConfig(os.path.join(directory, "config.json"))
    tensors = ref.SafetensorsDir(directory)
    decoder = ref.Decoder(cfg, tensors)
    types = ref.token_types(tokens, IMAGE_ID, AUDIO_ID, VIDEO_ID)
    vision = ref.VisionEmbedder(tensors, cfg.hidden, cfg.vision_rms_eps)
    soft = {ref.TYPE_IMAGE: np.concatenate([vision.embed_image(img_a.reshape(-1), 96, 48), vision.embed_image(img_b.reshape(-1), 144, 48)]),
            ref.TYPE_AUDIO: ref.AudioEmbedder(tensors, cfg.hidden, 640).embed(clip)}
    rows = ref.input_rows(decoder.embed, tokens, types, soft)
    text = types == ref.TYPE_TEXT
    check(np.array_equal(rows[types == ref.TYPE_IMAGE], soft[ref.TYPE_IMAGE]) and np.array_equal(rows[types == ref.TYPE_AUDIO], soft[ref.TYPE_AUDIO])
          and np.array_equal(rows[text], decoder.embed[np.array(tokens)[text]] * float(np.float32(np.sqrt(HIDDEN)))),
          "forward: soft rows placed in order, unscaled; text rows E[id] * f32(sqrt(hidden))")

    def moved_positions(request2):
        other = ref.run_request(directory, request2)
        finite = np.isfinite(base)
        return [p for p in range(len(tokens)) if not np.allclose(base[p][finite[p]], other[p][finite[p]], rtol=0, atol=1e-12)]

    # image B is positions 8-10: changing its LAST tile moves positions 8 onwards (bidirectional
    # on the sliding layer), nothing before the block
    img_b2 = img_b.copy()
    img_b2[:, 96:144] = 255 - img_b2[:, 96:144]
    path_b2 = os.path.join(work, "b2.rgb")
    img_b2.tofile(path_b2)
    req = json.loads(json.dumps(request))
    req["images"][1]["pixels"] = path_b2
    moved = moved_positions(req)
    check(moved == list(range(8, len(tokens))), f"forward: last tile of image B moves positions 8.. (its whole block) and nothing earlier ({moved[:4]}...)")

    # the last audio frame (position 16) moves only positions 16 onwards: audio is causal
    clip2 = clip.copy()
    clip2[1280:] *= -1.0
    path_c2 = os.path.join(work, "clip2.f32")
    clip2.tofile(path_c2)
    req = json.loads(json.dumps(request))
    req["audios"][0]["samples"] = path_c2
    moved = moved_positions(req)
    check(moved == list(range(16, len(tokens))), f"forward: last audio frame moves positions 16.. only (audio causal) ({moved})")

    # the full-layer switch: the full layer is the last one, so exactly the image tokens that
    # gain a later key there move — each block but its last token (A: 3; B: 8, 9)
    req = json.loads(json.dumps(request))
    req["bidirectional_full_layers"] = True
    moved = moved_positions(req)
    check(moved == [3, 8, 9], f"forward: bidirectional_full_layers moves image positions 3, 8, 9 only ({moved})")


def main():
    rng = np.random.default_rng(20260915)
    with tempfile.TemporaryDirectory(dir=os.environ.get("RAWFLOW_TEST_WORK")) as work:
        model = os.path.join(work, "model")
        model_zero_y = os.path.join(work, "model-zero-y")
        os.mkdir(model)
        os.mkdir(model_zero_y)
        written = make_model(model, np.random.default_rng(1))
        make_model(model_zero_y, np.random.default_rng(1), zero_y_table=True)
        check_reader(model, written)
        check_patch_layout()
        check_vision(model, model_zero_y, rng)
        check_audio(model, rng)
        check_masks()
        check_rope()
        check_forward(model, rng)
    print("OK: reference self-check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
