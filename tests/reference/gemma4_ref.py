#!/usr/bin/python3
"""Plain numpy reference of Gemma 4 "unified" (encoder-free multimodal), written from the
specification /work/shared/spec/gemma4-unified.md (§1, §2, §3.2-3.4, §4, §5.2, §7.2, §7.4, §8,
§10.4, §10.7) and NOT from rawflow's sources. It reads a Hugging Face model directory
(config.json + *.safetensors) and computes, without any cleverness:

  embed-image --model DIR --pixels FILE --width W --height H --out FILE
      FILE: raw uint8 RGB, HWC, already resized (W, H multiples of 48). Writes N x hidden float32.
  embed-audio --model DIR --samples FILE --out FILE
      FILE: raw float32 mono 16 kHz samples. Writes ceil(n/640) x hidden float32.
  forward --model DIR --request REQ.json --logprobs-out FILE
      Whole prompt through the decoder; writes one float32 row of natural-log probabilities per
      prompt position (row i = distribution of the token after position i), nothing else.

All arithmetic is float64: weights are widened once from their stored dtype (F32, F16, BF16) and
nothing is rounded in between. A reference should be more accurate than what it checks, so that a
difference measures the candidate's error and not this file's. With Debian's reference BLAS it
costs little over float32 (a 1000^3 product: 0.84 s vs 0.73 s). Only the outputs are rounded.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ---------------------------------------------------------------------------------------------
# safetensors


class BadInput(Exception):
    """A bad model directory or request; printed as one line naming what and where."""


SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


class SafetensorsDir:
    """All tensors of every *.safetensors file of a directory, widened to float64 on request."""

    def __init__(self, directory):
        self.entries = {}
        files = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
        if not files:
            raise BadInput(f"{directory}: no *.safetensors file")
        for name in files:
            self._index(os.path.join(directory, name))

    def _index(self, path):
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise BadInput(f"{path}: shorter than the 8-byte header length")
            (header_len,) = struct.unpack("<Q", raw)
            size = os.fstat(f.fileno()).st_size
            if header_len > size - 8:
                raise BadInput(f"{path}: header length {header_len} exceeds the file ({size} B)")
            try:
                header = json.loads(f.read(header_len))
            except ValueError as err:
                raise BadInput(f"{path}: header is not JSON: {err}") from None
        data_start = 8 + header_len
        mapped = np.memmap(path, dtype=np.uint8, mode="r")
        for tname, info in header.items():
            if tname == "__metadata__":
                continue
            dtype = info.get("dtype")
            if dtype not in SAFETENSORS_DTYPES:
                raise BadInput(f"{path}: tensor {tname}: dtype {dtype} not supported (F32/F16/BF16)")
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if end - begin != count * SAFETENSORS_DTYPES[dtype].itemsize or data_start + end > size:
                raise BadInput(f"{path}: tensor {tname}: offsets [{begin}, {end}) do not fit shape {shape} {dtype}")
            if tname in self.entries:
                raise BadInput(f"{path}: tensor {tname} also appears in {self.entries[tname][0]}")
            self.entries[tname] = (path, dtype, shape, mapped[data_start + begin:data_start + end])

    def has(self, name):
        return name in self.entries

    def get(self, name, shape=None):
        if name not in self.entries:
            raise BadInput(f"tensor {name} missing from the model directory")
        path, dtype, stored_shape, raw = self.entries[name]
        if shape is not None and tuple(shape) != stored_shape:
            raise BadInput(f"{path}: tensor {name} has shape {list(stored_shape)}, expected {list(shape)}")
        values = np.frombuffer(raw, dtype=SAFETENSORS_DTYPES[dtype])
        if dtype == "BF16":
            # bf16 is the top half of an IEEE float32
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(np.float64).reshape(stored_shape)

    def first(self, names, shape=None):
        """The first of several accepted names (on-disk vs renamed checkpoints, spec §7.4/§10.4)."""
        for name in names:
            if name in self.entries:
                return self.get(name, shape)
        raise BadInput(f"none of the tensors {', '.join(names)} is in the model directory")


# ---------------------------------------------------------------------------------------------
# configuration (spec §1)


class TextConfig:
    def __init__(self, path):
        try:
            with open(path) as f:
                top = json.load(f)
        except (OSError, ValueError) as err:
            raise BadInput(f"{path}: {err}") from None
        # Multimodal checkpoints nest the decoder under text_config; text-only ones are flat.
        c = top.get("text_config", top)
        self.top = top

        def need(key):
            if key not in c:
                raise BadInput(f"{path}: text_config.{key} missing")
            return c[key]

        self.hidden = int(need("hidden_size"))
        self.n_layers = int(need("num_hidden_layers"))
        self.vocab = int(need("vocab_size"))
        self.ffn = int(need("intermediate_size"))
        self.n_head = int(need("num_attention_heads"))
        self.n_kv = int(need("num_key_value_heads"))
        self.head_dim = int(need("head_dim"))
        self.k_eq_v = bool(c.get("attention_k_eq_v", False))
        # §1.1: global_head_dim / num_global_key_value_heads are the full layers' geometry; the
        # latter applies because attention_k_eq_v is true. Absent keys mean "same as sliding".
        self.global_head_dim = int(c.get("global_head_dim") or self.head_dim)
        self.n_kv_global = int(c.get("num_global_key_value_heads") or self.n_kv) if self.k_eq_v else self.n_kv
        self.layer_types = list(need("layer_types"))
        if len(self.layer_types) != self.n_layers:
            raise BadInput(f"{path}: layer_types has {len(self.layer_types)} entries, num_hidden_layers is {self.n_layers}")
        for i, t in enumerate(self.layer_types):
            if t not in ("sliding_attention", "full_attention"):
                raise BadInput(f"{path}: layer_types[{i}] = {t!r}")
        self.window = int(need("sliding_window"))
        self.eps = float(c.get("rms_norm_eps", 1e-6))
        self.softcap = c.get("final_logit_softcapping")
        self.tie = bool(top.get("tie_word_embeddings", c.get("tie_word_embeddings", True)))
        act = c.get("hidden_activation", "gelu_pytorch_tanh")
        if act != "gelu_pytorch_tanh":
            raise BadInput(f"{path}: hidden_activation {act!r}; only gelu_pytorch_tanh (§2.9) is implemented")
        for key in ("hidden_size_per_layer_input", "num_kv_shared_layers"):
            if c.get(key):
                raise BadInput(f"{path}: {key} = {c[key]}; the 12B does not use it (§2.11), not implemented")
        if c.get("enable_moe_block") or c.get("use_double_wide_mlp"):
            raise BadInput(f"{path}: MoE / double-wide MLP not implemented (§2.11)")
        # §1.1/§2.8: "vision" = image/video blocks bidirectional on sliding layers. Decision: an
        # absent key means the released 12B's "vision"; an explicit null/false means plain causal.
        bidir = c.get("use_bidirectional_attention", "vision")
        if bidir not in ("vision", None, False):
            raise BadInput(f"{path}: use_bidirectional_attention = {bidir!r}; only \"vision\" is in the spec")
        self.vision_blocks = bidir == "vision"
        rope = need("rope_parameters")
        self.rope = {}
        for t in ("sliding_attention", "full_attention"):
            if t not in rope:
                raise BadInput(f"{path}: rope_parameters.{t} missing")
            self.rope[t] = rope[t]
        vision = top.get("vision_config", {}) or {}
        self.vision_rms_eps = float(vision.get("rms_norm_eps", 1e-6))
        audio = top.get("audio_config", {}) or {}
        self.audio_frame = int(audio.get("audio_samples_per_token", audio.get("hidden_size", 640)))

    def is_full(self, layer):
        return self.layer_types[layer] == "full_attention"

    def geometry(self, layer):
        """(head_dim, n_kv, k_eq_v) of one layer (§2.5)."""
        if self.is_full(layer):
            return self.global_head_dim, self.n_kv_global, self.k_eq_v
        return self.head_dim, self.n_kv, False


# ---------------------------------------------------------------------------------------------
# norms and activations (§2.3, §2.9, §3.3)


def rms_norm(x, eps, weight=None):
    """x·(mean(x²)+eps)^(-1/2)·w over the last axis, with the RAW weight (Gemma 4, not 1+w)."""
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y if weight is None else y * weight


def layer_norm(x, weight, bias, eps=1e-5):
    """torch LayerNorm: population variance, eps 1e-5 for all three vision LayerNorms (§1.2, §8.1.7)."""
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight + bias


def gelu_tanh(z):
    return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))


def log_softmax(z):
    top = z.max(axis=-1, keepdims=True)
    return z - (top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True)))


# ---------------------------------------------------------------------------------------------
# vision embedder (§3.2, §3.3, §7.4, §10.4)

TILE = 48
TILE_VALUES = TILE * TILE * 3
POS_TABLE_ROWS = 1120

VISION_NAMES = {  # on-disk names first, then the current transformers module names (§10.4)
    "ln1.w": ["model.vision_embedder.patch_ln1.weight", "model.embed_vision.patch_ln1.weight"],
    "ln1.b": ["model.vision_embedder.patch_ln1.bias", "model.embed_vision.patch_ln1.bias"],
    "dense.w": ["model.vision_embedder.patch_dense.weight", "model.embed_vision.patch_dense.weight"],
    "dense.b": ["model.vision_embedder.patch_dense.bias", "model.embed_vision.patch_dense.bias"],
    "ln2.w": ["model.vision_embedder.patch_ln2.weight", "model.embed_vision.patch_ln2.weight"],
    "ln2.b": ["model.vision_embedder.patch_ln2.bias", "model.embed_vision.patch_ln2.bias"],
    "pos": ["model.vision_embedder.pos_embedding", "model.embed_vision.pos_embedding"],
    "ln3.w": ["model.vision_embedder.pos_norm.weight", "model.embed_vision.pos_norm.weight"],
    "ln3.b": ["model.vision_embedder.pos_norm.bias", "model.embed_vision.pos_norm.bias"],
    "proj": ["model.embed_vision.embedding_projection.weight",
             "model.embed_vision.multimodal_embedder.embedding_projection.weight"],
}
AUDIO_PROJ_NAMES = ["model.embed_audio.embedding_projection.weight",
                    "model.embed_audio.multimodal_embedder.embedding_projection.weight"]


class VisionEmbedder:
    def __init__(self, tensors, hidden, rms_eps):
        w = {}
        dense = tensors.first(VISION_NAMES["dense.w"])
        if dense.ndim != 2 or dense.shape[1] != TILE_VALUES:
            raise BadInput(f"{VISION_NAMES['dense.w'][0]}: shape {list(dense.shape)}, expected [D, {TILE_VALUES}]")
        d = dense.shape[0]
        w["dense.w"] = dense
        for key in ("ln1.w", "ln1.b"):
            w[key] = tensors.first(VISION_NAMES[key], (TILE_VALUES,))
        for key in ("dense.b", "ln2.w", "ln2.b", "ln3.w", "ln3.b"):
            w[key] = tensors.first(VISION_NAMES[key], (d,))
        # HF layout [1120, 2, D]: [:, 0] is the x (column) table, [:, 1] the y (row) table (§3.3, §8.1.8)
        w["pos"] = tensors.first(VISION_NAMES["pos"], (POS_TABLE_ROWS, 2, d))
        w["proj"] = tensors.first(VISION_NAMES["proj"], (hidden, d))
        self.w, self.rms_eps = w, rms_eps

    def embed_tiles(self, tiles, xs, ys):
        """tiles [N, 6912] in HWC order with values in [0, 1]; xs = columns, ys = rows (§3.3)."""
        w = self.w
        xs, ys = np.asarray(xs), np.asarray(ys)
        if len(xs) and (xs.max() >= POS_TABLE_ROWS or ys.max() >= POS_TABLE_ROWS or min(xs.min(), ys.min()) < 0):
            raise BadInput(f"tile position outside the {POS_TABLE_ROWS}-row position table")
        h = layer_norm(tiles, w["ln1.w"], w["ln1.b"])
        h = h @ w["dense.w"].T + w["dense.b"]
        h = layer_norm(h, w["ln2.w"], w["ln2.b"])
        h = h + w["pos"][xs, 0, :] + w["pos"][ys, 1, :]
        h = layer_norm(h, w["ln3.w"], w["ln3.b"])
        h = rms_norm(h, self.rms_eps)
        return h @ w["proj"].T

    def embed_image(self, pixels, width, height):
        tiles, xs, ys = patchify(pixels, width, height)
        return self.embed_tiles(tiles, xs, ys)


def patchify(pixels, width, height):
    """uint8 HWC image -> (tiles [N, 6912] HWC in [0, 1], xs, ys), tokens row-major (§3.2).

    Step 0 of §3.3 (cast to the weight dtype) is not applied: HF rounds pixels to bf16 on a bf16
    model, which §8.1.14 calls a deviation from intent; this reference keeps k/255 exact."""
    if width % TILE or height % TILE or width <= 0 or height <= 0:
        raise BadInput(f"image {width}x{height}: both sides must be positive multiples of {TILE}")
    pixels = np.asarray(pixels)
    if pixels.size != width * height * 3:
        raise BadInput(f"image {width}x{height}: {pixels.size} bytes, expected {width * height * 3}")
    img = pixels.reshape(height, width, 3).astype(np.float64) / 255.0
    gw, gh = width // TILE, height // TILE
    # [gy, r, gx, c, ch] -> [gy, gx, r, c, ch]: tile-major, then rows, columns, channel innermost
    tiles = img.reshape(gh, TILE, gw, TILE, 3).transpose(0, 2, 1, 3, 4).reshape(gh * gw, TILE_VALUES)
    t = np.arange(gh * gw)
    return tiles, t % gw, t // gw


def read_pixels(path, width, height):
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise BadInput(f"{path}: {err}") from None
    if data.size != width * height * 3:
        raise BadInput(f"{path}: {data.size} bytes, expected {width}x{height}x3 = {width * height * 3}")
    return data


# ---------------------------------------------------------------------------------------------
# audio embedder (§4)

AUDIO_RMS_EPS = 1e-6  # fixed (§10.6)


class AudioEmbedder:
    def __init__(self, tensors, hidden, frame):
        self.proj = tensors.first(AUDIO_PROJ_NAMES, (hidden, frame))
        self.frame = frame

    def frames(self, samples):
        """Zero-pad on the right to a multiple of the frame; the padding never adds a frame (§4.2)."""
        samples = np.asarray(samples, dtype=np.float64)
        n_tok = -(-samples.size // self.frame)
        padded = np.zeros(n_tok * self.frame)
        padded[:samples.size] = samples
        return padded.reshape(n_tok, self.frame)

    def embed_frames(self, frames):
        return rms_norm(frames, AUDIO_RMS_EPS) @ self.proj.T

    def embed(self, samples):
        return self.embed_frames(self.frames(samples))


def read_samples(path):
    try:
        return np.fromfile(path, dtype="<f4")
    except OSError as err:
        raise BadInput(f"{path}: {err}") from None


# ---------------------------------------------------------------------------------------------
# attention masks (§2.8)

TYPE_TEXT, TYPE_IMAGE, TYPE_VIDEO, TYPE_AUDIO = 0, 1, 2, 3
ATTENTION_QUERY_BLOCK = 128


def vision_blocks(types):
    """Block id per position: maximal runs of consecutive image (or video) soft tokens, -1 elsewhere.

    Decision: a run is of ONE type; an image token directly followed by a video token starts a new
    block (§2.8 says "image (=1) or video (=2)"; in real prompts the two are always separated by
    <image|>, so this never matters). Two images with nothing between them would form one block:
    §2.8 defines blocks by runs, and <|image>/<image|> (text) are what separates images."""
    blocks = np.full(len(types), -1)
    current = -1
    for i, t in enumerate(types):
        if t in (TYPE_IMAGE, TYPE_VIDEO):
            if i == 0 or types[i - 1] != t:
                current += 1
            blocks[i] = current
    return blocks


def attention_mask(types, sliding, window, bidirectional):
    """allowed[q, k] for one layer type (§2.8).

    full:    k <= q                               (OR same block, if bidirectional)
    sliding: k > q - window AND (k <= q OR same block)
    Audio soft tokens (type 3) never form a block: audio stays causal."""
    t = len(types)
    q = np.arange(t)[:, None]
    k = np.arange(t)[None, :]
    allowed = k <= q
    if bidirectional:
        blocks = vision_blocks(types)
        same = (blocks[:, None] == blocks[None, :]) & (blocks[:, None] >= 0)
        allowed = allowed | same
    if sliding:
        allowed = allowed & (k > q - window)
    return allowed


# ---------------------------------------------------------------------------------------------
# RoPE (§2.6)


def rope_frequencies(params, head_dim, where):
    """ω_i for i < head_dim/2; zero frequency = identity (no rotation) for the pair."""
    kind = params.get("rope_type", "default")
    base = float(params["rope_theta"])
    half = head_dim // 2
    i = np.arange(half, dtype=np.float64)
    omega = base ** (-2.0 * i / head_dim)
    if kind == "proportional":
        # §2.6: int(factor·D // 2) pairs rotate; the exponent denominator stays the FULL head dim
        rotating = int(float(params.get("partial_rotary_factor", 1.0)) * head_dim // 2)
        omega[rotating:] = 0.0
        factor = float(params.get("factor", 1.0))
        if factor != 1.0:
            raise BadInput(f"rope_parameters.{where}.factor = {factor}: not in the spec, not implemented")
    elif kind == "default":
        if float(params.get("partial_rotary_factor", 1.0)) != 1.0:
            raise BadInput(f"rope_parameters.{where}: partial_rotary_factor with rope_type default is not in the spec")
    else:
        raise BadInput(f"rope_parameters.{where}.rope_type = {kind!r}; only default and proportional (§2.6)")
    return omega


def apply_rope(u, positions, omega):
    """NeoX rotate-half on u [T, heads, D]: pairs (i, i + D/2)."""
    half = u.shape[-1] // 2
    theta = positions[:, None].astype(np.float64) * omega[None, :]  # [T, D/2]
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    a, b = u[..., :half], u[..., half:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


# ---------------------------------------------------------------------------------------------
# decoder (§2.2-2.10, names §7.2)


class Decoder:
    def __init__(self, cfg, tensors):
        self.cfg = cfg
        prefix = "model.language_model." if tensors.has("model.language_model.embed_tokens.weight") else "model."
        self.prefix = prefix
        h = cfg.hidden
        self.embed = tensors.get(prefix + "embed_tokens.weight", (cfg.vocab, h))
        self.final_norm = tensors.get(prefix + "norm.weight", (h,))
        if cfg.tie or not tensors.has("lm_head.weight"):
            self.head = self.embed
        else:
            self.head = tensors.get("lm_head.weight", (cfg.vocab, h))
        self.layers = [self._layer(tensors, i) for i in range(cfg.n_layers)]

    def _layer(self, tensors, i):
        cfg, h = self.cfg, self.cfg.hidden
        p = f"{self.prefix}layers.{i}."
        d, n_kv, k_eq_v = cfg.geometry(i)
        L = {"d": d, "n_kv": n_kv, "k_eq_v": k_eq_v, "full": cfg.is_full(i)}
        for key in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                    "post_feedforward_layernorm"):
            L[key] = tensors.get(p + key + ".weight", (h,))
        L["q"] = tensors.get(p + "self_attn.q_proj.weight", (cfg.n_head * d, h))
        L["k"] = tensors.get(p + "self_attn.k_proj.weight", (n_kv * d, h))
        has_v = tensors.has(p + "self_attn.v_proj.weight")
        if k_eq_v and has_v:
            raise BadInput(f"{p}self_attn.v_proj.weight present on a full layer with attention_k_eq_v (§2.5)")
        L["v"] = None if k_eq_v else tensors.get(p + "self_attn.v_proj.weight", (n_kv * d, h))
        L["o"] = tensors.get(p + "self_attn.o_proj.weight", (h, cfg.n_head * d))
        L["q_norm"] = tensors.get(p + "self_attn.q_norm.weight", (d,))
        L["k_norm"] = tensors.get(p + "self_attn.k_norm.weight", (d,))
        L["gate"] = tensors.get(p + "mlp.gate_proj.weight", (cfg.ffn, h))
        L["up"] = tensors.get(p + "mlp.up_proj.weight", (cfg.ffn, h))
        L["down"] = tensors.get(p + "mlp.down_proj.weight", (h, cfg.ffn))
        L["scalar"] = float(tensors.get(p + "layer_scalar", (1,))[0])
        if cfg.n_head % n_kv:
            raise BadInput(f"layer {i}: {cfg.n_head} query heads not a multiple of {n_kv} KV heads")
        kind = cfg.layer_types[i]
        L["omega"] = rope_frequencies(cfg.rope[kind], d, kind)
        return L

    def attention(self, L, x, positions, allowed):
        cfg = self.cfg
        t, d, n_kv = x.shape[0], L["d"], L["n_kv"]
        q = (x @ L["q"].T).reshape(t, cfg.n_head, d)
        q = apply_rope(rms_norm(q, cfg.eps, L["q_norm"]), positions, L["omega"])
        k_raw = (x @ L["k"].T).reshape(t, n_kv, d)
        # full layers with K=V: V is the raw K projection, before k_norm and RoPE (§2.5, §8.1.3)
        v_raw = k_raw if L["k_eq_v"] else (x @ L["v"].T).reshape(t, n_kv, d)
        k = apply_rope(rms_norm(k_raw, cfg.eps, L["k_norm"]), positions, L["omega"])
        v = rms_norm(v_raw, cfg.eps)  # weightless v_norm on every layer, never rotated
        n_rep = cfg.n_head // n_kv
        out = np.empty((t, cfg.n_head, d))
        # Queries in blocks, each against the span of keys its mask allows anywhere: the same
        # result as one T x T product (masked keys get probability exactly 0), with less work on
        # long prompts (the causal triangle, the window).
        for a in range(0, t, ATTENTION_QUERY_BLOCK):
            b = min(t, a + ATTENTION_QUERY_BLOCK)
            cols = np.flatnonzero(allowed[a:b].any(axis=0))
            lo, hi = cols[0], cols[-1] + 1
            bias = np.where(allowed[a:b, lo:hi], 0.0, -np.inf)
            for j in range(n_kv):
                heads = slice(j * n_rep, (j + 1) * n_rep)  # query head h uses KV head h // n_rep
                scores = np.einsum("qhd,kd->hqk", q[a:b, heads, :], k[lo:hi, j, :], optimize=True)
                scores += bias  # scale 1.0 (§2.7)
                scores -= scores.max(axis=2, keepdims=True)
                p = np.exp(scores)
                p /= p.sum(axis=2, keepdims=True)
                out[a:b, heads, :] = np.einsum("hqk,kd->qhd", p, v[lo:hi, j, :], optimize=True)
        return out.reshape(t, cfg.n_head * d) @ L["o"].T

    def mlp(self, L, x):
        return (gelu_tanh(x @ L["gate"].T) * (x @ L["up"].T)) @ L["down"].T

    def forward(self, rows, types, bidirectional_full_layers=False):
        """rows [T, hidden] input embeddings -> logits [T, vocab] after soft-cap."""
        cfg = self.cfg
        positions = np.arange(rows.shape[0])
        masks = {
            False: attention_mask(types, False, cfg.window, bidirectional_full_layers),
            True: attention_mask(types, True, cfg.window, cfg.vision_blocks),
        }
        h = rows
        for L in self.layers:
            sliding = not L["full"]
            x = rms_norm(h, cfg.eps, L["input_layernorm"])
            a = self.attention(L, x, positions, masks[sliding])
            h = h + rms_norm(a, cfg.eps, L["post_attention_layernorm"])
            x = rms_norm(h, cfg.eps, L["pre_feedforward_layernorm"])
            m = self.mlp(L, x)
            h = h + rms_norm(m, cfg.eps, L["post_feedforward_layernorm"])
            h = h * L["scalar"]  # the whole residual stream, once per layer (§2.4)
        y = rms_norm(h, cfg.eps, self.final_norm)
        logits = y @ self.head.T
        if cfg.softcap:
            logits = cfg.softcap * np.tanh(logits / cfg.softcap)
        return logits


# ---------------------------------------------------------------------------------------------
# a whole request (§2.2, §3.4, §4.4, §5.2)


def embedding_scale(hidden):
    """sqrt(hidden) rounded to float32, as llama.cpp uses it (§2.2 discusses HF-bf16's 62.0)."""
    return float(np.float32(math.sqrt(hidden)))


def token_types(tokens, image_id, audio_id, video_id):
    types = np.full(len(tokens), TYPE_TEXT)
    for i, tok in enumerate(tokens):
        if image_id is not None and tok == image_id:
            types[i] = TYPE_IMAGE
        elif video_id is not None and tok == video_id:
            types[i] = TYPE_VIDEO
        elif audio_id is not None and tok == audio_id:
            types[i] = TYPE_AUDIO
    return types


def input_rows(embed, tokens, types, soft_rows):
    """E[id]·scale for text tokens; placeholders overwritten, in order, by unscaled embedder rows.

    soft_rows maps a type to the concatenated rows of its media in order of appearance."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= embed.shape[0]):
        bad = int(tokens[(tokens < 0) | (tokens >= embed.shape[0])][0])
        raise BadInput(f"token id {bad} outside the vocabulary of {embed.shape[0]}")
    rows = embed[tokens] * embedding_scale(embed.shape[1])
    for kind, name in ((TYPE_IMAGE, "image"), (TYPE_VIDEO, "video"), (TYPE_AUDIO, "audio")):
        where = np.flatnonzero(types == kind)
        media = soft_rows.get(kind, np.zeros((0, embed.shape[1])))
        if len(where) != media.shape[0]:
            raise BadInput(f"request has {len(where)} {name} placeholder tokens but its {name}s give {media.shape[0]} rows")
        rows[where] = media
    return rows


def run_request(model_dir, request):
    cfg = TextConfig(os.path.join(model_dir, "config.json"))
    tensors = SafetensorsDir(model_dir)
    tokens = [int(t) for t in request["tokens"]]
    if not tokens:
        raise BadInput("request: empty token list")
    image_id, audio_id, video_id = (request.get(k) for k in ("image_token_id", "audio_token_id", "video_token_id"))
    types = token_types(tokens, image_id, audio_id, video_id)
    soft = {}
    images = request.get("images", [])
    # Decision: video frames come as "videos": a list of frames {pixels, width, height}, filling the
    # video placeholders in order; each frame is embedded exactly like an image (§3.6).
    videos = request.get("videos", [])
    if images or videos:
        vision = VisionEmbedder(tensors, cfg.hidden, cfg.vision_rms_eps)
        for kind, items in ((TYPE_IMAGE, images), (TYPE_VIDEO, videos)):
            if items:
                soft[kind] = np.concatenate([
                    vision.embed_image(read_pixels(i["pixels"], i["width"], i["height"]), i["width"], i["height"])
                    for i in items])
    audios = request.get("audios", [])
    if audios:
        audio = AudioEmbedder(tensors, cfg.hidden, cfg.audio_frame)
        soft[TYPE_AUDIO] = np.concatenate([audio.embed(read_samples(a["samples"])) for a in audios])
    decoder = Decoder(cfg, tensors)
    rows = input_rows(decoder.embed, tokens, types, soft)
    logits = decoder.forward(rows, types, bool(request.get("bidirectional_full_layers", False)))
    for s in request.get("suppress_ids", []) or []:
        if 0 <= int(s) < cfg.vocab:
            logits[:, int(s)] = -np.inf
    return log_softmax(logits)


# ---------------------------------------------------------------------------------------------
# command line


def write_rows(path, rows):
    np.ascontiguousarray(rows, dtype="<f4").tofile(path)


def cmd_embed_image(args):
    cfg = TextConfig(os.path.join(args.model, "config.json"))
    vision = VisionEmbedder(SafetensorsDir(args.model), cfg.hidden, cfg.vision_rms_eps)
    write_rows(args.out, vision.embed_image(read_pixels(args.pixels, args.width, args.height), args.width, args.height))


def cmd_embed_audio(args):
    cfg = TextConfig(os.path.join(args.model, "config.json"))
    audio = AudioEmbedder(SafetensorsDir(args.model), cfg.hidden, cfg.audio_frame)
    write_rows(args.out, audio.embed(read_samples(args.samples)))


def cmd_forward(args):
    try:
        with open(args.request) as f:
            request = json.load(f)
    except (OSError, ValueError) as err:
        raise BadInput(f"{args.request}: {err}") from None
    write_rows(args.logprobs_out, run_request(args.model, request))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("embed-image", help="vision embedder rows of one resized image")
    p.add_argument("--model", required=True)
    p.add_argument("--pixels", required=True, help="raw uint8 RGB, HWC")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_embed_image)
    p = sub.add_parser("embed-audio", help="audio embedder rows of one clip")
    p.add_argument("--model", required=True)
    p.add_argument("--samples", required=True, help="raw float32 mono 16 kHz")
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_embed_audio)
    p = sub.add_parser("forward", help="log-probs of a (multimodal) prompt")
    p.add_argument("--model", required=True)
    p.add_argument("--request", required=True, help="JSON: tokens, placeholder ids, images, audios")
    p.add_argument("--logprobs-out", required=True)
    p.set_defaults(run=cmd_forward)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except BadInput as err:
        print(f"gemma4_ref: {err}", file=sys.stderr)
        return 1
    except KeyError as err:
        print(f"gemma4_ref: missing key {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
