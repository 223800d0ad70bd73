"""Gemma 4 "unified" in PyTorch, for training: the architecture exactly as rawflow runs it.

Spec references are to shared/spec/gemma4-unified.md. Parameter names are the Hugging Face
on-disk names (spec §7.2, §7.4), so export.py writes state_dict() as it is.

  text:   E[id]·sqrt(d) (f32) for text ids; soft tokens replace placeholder rows unscaled (§2.2)
  layer:  RMSNorm with RAW weights (§2.3); q/k norms before NeoX RoPE; V = weightless RMSNorm of
          the raw V projection, or of the raw K projection on full layers (K = V, §2.5); scale 1.0,
          no attention soft-cap (§2.7); sliding window + image blocks bidirectional on sliding
          layers only (HF generation semantics, rawflow's default, §2.8); GeGLU-tanh (§2.9);
          h *= layer_scalar after the MLP residual (§2.4)
  head:   tied embedding, 30·tanh(z/30) (§2.10)
  vision: LN(6912) -> Linear(+b) -> LN -> + P[x,0] + P[y,1] -> LN -> RMSNorm -> Linear (§3.3)
  audio:  RMSNorm over each 640-sample frame -> Linear(640 -> d) (§4)
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

TYPE_TEXT, TYPE_IMAGE, TYPE_AUDIO = 0, 1, 3
FRAME = 640
TILE_VALUES = 48 * 48 * 3
POS_ROWS = 1120


def default_config(vocab_size):
    """The trained demo model's shape: sliding layers then a full one (the 12B's last layer is
    full too), the 12B's head geometry ratios (full-layer heads twice as wide, one K=V head) on a
    256-wide stream; sized for ~2 steps/s-scale training on 2 cores (train/README.md)."""
    return {
        "vocab_size": vocab_size, "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "global_head_dim": 128,
        "num_global_key_value_heads": 1,
        "layer_types": ["sliding_attention"] * 3 + ["full_attention"],
        "sliding_window": 512, "rope_theta_swa": 10000.0, "rope_theta_full": 1000000.0,
        "partial_rotary_factor": 0.25, "final_logit_softcapping": 30.0, "rms_norm_eps": 1e-6,
    }


class Linear(nn.Linear):
    """nn.Linear whose output is f32: under bf16 autocast (train.py --bf16) only the matmul's
    inputs are rounded, and norms, attention and the residual stream stay in f32."""

    def forward(self, x):
        y = super().forward(x)
        return y.float() if y.dtype == torch.bfloat16 else y


def rms_norm(x, eps, weight=None):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if weight is None else y * weight


class RMSNorm(nn.Module):
    def __init__(self, dim, eps, init=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim,), float(init)))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.eps, self.weight)


def rope_omega(head_dim, theta, rotated_pairs):
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    omega = theta ** (-2.0 * i / head_dim)  # exponent over the FULL head dim, also when partial (§2.6)
    omega[rotated_pairs:] = 0.0
    return omega.float()


def apply_rope(u, cos, sin):
    """NeoX rotate-half on u [B, H, T, D]; cos/sin [T, D/2]."""
    half = u.shape[-1] // 2
    a, b = u[..., :half], u[..., half:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg, full):
        super().__init__()
        d = cfg["hidden_size"]
        self.full = full
        self.n_head = cfg["num_attention_heads"]
        self.hd = cfg["global_head_dim"] if full else cfg["head_dim"]
        self.n_kv = cfg["num_global_key_value_heads"] if full else cfg["num_key_value_heads"]
        self.eps = cfg["rms_norm_eps"]
        self.q_proj = Linear(d, self.n_head * self.hd, bias=False)
        self.k_proj = Linear(d, self.n_kv * self.hd, bias=False)
        if not full:
            self.v_proj = Linear(d, self.n_kv * self.hd, bias=False)
        self.o_proj = Linear(self.n_head * self.hd, d, bias=False)
        self.q_norm = RMSNorm(self.hd, self.eps)
        # Attention scale is 1.0: unit k_norm would start q·k at std ~sqrt(hd) (shared/notes/training.md).
        self.k_norm = RMSNorm(self.hd, self.eps, init=1.0 / math.sqrt(self.hd))
        rotated = int(cfg["partial_rotary_factor"] * self.hd // 2) if full else self.hd // 2
        theta = cfg["rope_theta_full"] if full else cfg["rope_theta_swa"]
        self.register_buffer("omega", rope_omega(self.hd, theta, rotated), persistent=False)

    def forward(self, x, allowed):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)
        k_raw = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v_raw = k_raw if self.full else self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        theta = torch.arange(T, dtype=x.dtype)[:, None] * self.omega.to(x.dtype)[None, :]
        cos, sin = torch.cos(theta), torch.sin(theta)
        q = apply_rope(self.q_norm(q), cos, sin)
        k = apply_rope(self.k_norm(k_raw), cos, sin)
        v = rms_norm(v_raw, self.eps)
        rep = self.n_head // self.n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        with torch.autocast("cpu", enabled=False):  # scores and softmax in f32
            scores = q @ k.transpose(-1, -2)  # scale 1.0
            scores = scores.masked_fill(~allowed[:, None], float("-inf"))
            out = torch.softmax(scores, dim=-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_head * self.hd))


# GELU as llama.cpp (and so rawflow) evaluates it: the input rounded to fp16, the value taken from a
# table of fp16 results, exact outside (-10, 10) (model/kernels/vec.cpp geglu_tanh). Training uses
# the exact function; forward.py switches this on to compare with rawflow (train/README.md).
LLAMA_GELU = False


def gelu(z):
    if not LLAMA_GELU:
        return F.gelu(z, approximate="tanh")
    table = F.gelu(z.half().to(z.dtype), approximate="tanh").half().to(z.dtype)
    return torch.where(z <= -10, torch.zeros_like(z), torch.where(z >= 10, z, table))


class MLP(nn.Module):
    def __init__(self, d, ffn):
        super().__init__()
        self.gate_proj = Linear(d, ffn, bias=False)
        self.up_proj = Linear(d, ffn, bias=False)
        self.down_proj = Linear(ffn, d, bias=False)

    def forward(self, x):
        return self.down_proj(gelu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg, full):
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.full = full
        self.self_attn = Attention(cfg, full)
        self.mlp = MLP(d, cfg["intermediate_size"])
        self.input_layernorm = RMSNorm(d, eps)
        self.post_attention_layernorm = RMSNorm(d, eps)
        self.pre_feedforward_layernorm = RMSNorm(d, eps)
        self.post_feedforward_layernorm = RMSNorm(d, eps)
        self.layer_scalar = nn.Parameter(torch.ones(1))

    def forward(self, h, allowed):
        h = h + self.post_attention_layernorm(self.self_attn(self.input_layernorm(h), allowed))
        h = h + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(h)))
        return h * self.layer_scalar


class LanguageModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], d)
        nn.init.normal_(self.embed_tokens.weight, std=1.0 / math.sqrt(d))
        self.layers = nn.ModuleList([Layer(cfg, t == "full_attention") for t in cfg["layer_types"]])
        self.norm = RMSNorm(d, cfg["rms_norm_eps"])


class VisionEmbedder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.patch_ln1 = nn.LayerNorm(TILE_VALUES, eps=1e-5)
        self.patch_dense = Linear(TILE_VALUES, d)
        self.patch_ln2 = nn.LayerNorm(d, eps=1e-5)
        self.pos_embedding = nn.Parameter(torch.randn(POS_ROWS, 2, d) * 0.5)
        self.pos_norm = nn.LayerNorm(d, eps=1e-5)

    def forward(self, tiles, xs, ys):
        h = self.patch_ln2(self.patch_dense(self.patch_ln1(tiles)))
        h = h + self.pos_embedding[xs, 0] + self.pos_embedding[ys, 1]  # x = column -> slice 0 (§8.1.8)
        return self.pos_norm(h)


class Projection(nn.Module):
    """RMSNorm without weight, then Linear without bias (the `embed_vision` / `embed_audio` modules)."""

    def __init__(self, d_in, d_out, eps=1e-6):
        super().__init__()
        self.embedding_projection = Linear(d_in, d_out, bias=False)
        self.eps = eps

    def forward(self, x):
        return self.embedding_projection(rms_norm(x, self.eps))


def filterbank_(weight, sample_rate=16000, f_lo=80.0, f_hi=7600.0):
    """Starts the audio projection [d, 640] as a Hann-windowed cosine/sine pair per frequency, d/2
    frequencies mel-spaced over f_lo..f_hi, each row of unit norm. Only the starting point: the
    rows are trained like any weight. With random rows the decoder had to discover band energies
    from raw phase-sensitive projections first, and four runs spent 300-1,450 steps without using
    the audio at all (train/README.md); a pair (a, b) of one frequency gives its energy a^2 + b^2,
    which a GeGLU (a product of two projections) forms directly."""
    d, n = weight.shape
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    m = torch.linspace(mel(f_lo), mel(f_hi), d // 2, dtype=torch.float64)
    freqs = 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    t = torch.arange(n, dtype=torch.float64)
    window = torch.hann_window(n, periodic=False, dtype=torch.float64)
    phase = 2.0 * math.pi * freqs[:, None] * t[None, :] / sample_rate
    rows = torch.cat([window * torch.cos(phase), window * torch.sin(phase)])
    with torch.no_grad():
        weight.copy_((rows / rows.norm(dim=1, keepdim=True)).to(weight.dtype))


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.language_model = LanguageModel(cfg)
        self.vision_embedder = VisionEmbedder(d)
        self.embed_vision = Projection(d, d)
        self.embed_audio = Projection(FRAME, d)
        filterbank_(self.embed_audio.embedding_projection.weight)


class Gemma4Unified(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        self.embed_scale = float(torch.tensor(math.sqrt(cfg["hidden_size"]), dtype=torch.float32))

    def embed_audio_frames(self, frames):
        return self.model.embed_audio(frames)

    def embed_tiles(self, tiles, xs, ys):
        return self.model.embed_vision(self.model.vision_embedder(tiles, xs, ys))

    def masks(self, types, blocks):
        """(sliding, full) allowed[B, T, T]. blocks: image block id per position, -1 elsewhere."""
        B, T = types.shape
        q = torch.arange(T)[:, None]
        k = torch.arange(T)[None, :]
        causal = (k <= q)[None].expand(B, T, T)
        same = (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)
        window = (k > q - self.cfg["sliding_window"])[None]
        return (causal | same) & window, causal

    def forward(self, ids, types, blocks, soft_rows):
        """ids [B, T]; types [B, T] (TYPE_*); soft_rows [n_soft, d] in order of appearance
        (row-major over the batch) -> logits [B, T, vocab]."""
        lm = self.model.language_model
        x = lm.embed_tokens(ids) * self.embed_scale
        soft = types != TYPE_TEXT
        if soft.any():
            x = x.masked_scatter(soft[..., None], soft_rows)
        sliding, full = self.masks(types, blocks)
        h = x
        for layer in lm.layers:
            h = layer(h, full if layer.full else sliding)
        y = lm.norm(h)
        with torch.autocast("cpu", enabled=False):  # logits in f32: bf16 would step by 0.125 near 30
            z = y @ lm.embed_tokens.weight.t()
        c = self.cfg["final_logit_softcapping"]
        return c * torch.tanh(z / c)


def matrix_parameters(model):
    """The weights that get weight decay: 2-D projections and the embedding."""
    return [p for n, p in model.named_parameters() if p.ndim == 2]
