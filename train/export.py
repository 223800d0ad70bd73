"""Writes a trained model as a Hugging Face directory rawflow loads: config.json (the keys
model/synth/synth.cpp's hf_config writes, spec §1), model.safetensors (F32, on-disk names of spec §7.2 and
§7.4) and tokenizer.json. `rawflow model convert` turns the directory into the GGUF pair.
"""
import json
import os
import struct

import numpy as np


def write_safetensors(path, tensors):
    """tensors: {name: float32 numpy array}, written in sorted order (the format's convention)."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def hf_config(cfg, tok):
    ids = {"boi_token_id": "<|image>", "image_token_id": "<|image|>", "eoi_token_id": "<image|>",
           "boa_token_id": "<|audio>", "audio_token_id": "<|audio|>", "eoa_token_index": "<audio|>",
           "video_token_id": "<|video|>"}
    partial = cfg["partial_rotary_factor"]
    text = {
        "model_type": "gemma4_unified_text", "vocab_size": cfg["vocab_size"], "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["intermediate_size"], "num_hidden_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"], "num_key_value_heads": cfg["num_key_value_heads"],
        "head_dim": cfg["head_dim"], "global_head_dim": cfg["global_head_dim"],
        "num_global_key_value_heads": cfg["num_global_key_value_heads"], "attention_k_eq_v": True,
        "layer_types": cfg["layer_types"], "sliding_window": cfg["sliding_window"],
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": cfg["rope_theta_swa"]},
            "full_attention": {"rope_type": "proportional", "partial_rotary_factor": partial,
                               "rope_theta": cfg["rope_theta_full"]}},
        "max_position_embeddings": 4096, "final_logit_softcapping": cfg["final_logit_softcapping"],
        "rms_norm_eps": cfg["rms_norm_eps"], "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
        "use_bidirectional_attention": "vision", "attention_bias": False, "num_kv_shared_layers": 0,
        "use_double_wide_mlp": False, "hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": cfg["vocab_size"],
        "enable_moe_block": False, "pad_token_id": tok.id("<pad>"), "bos_token_id": tok.id("<bos>"),
        "eos_token_id": tok.id("<eos>"), "dtype": "float32",
    }
    out = {"architectures": ["Gemma4UnifiedForConditionalGeneration"], "model_type": "gemma4_unified",
           "text_config": text, "tie_word_embeddings": True, "dtype": "float32"}
    out.update({k: tok.id(v) for k, v in ids.items()})
    out["eos_token_id"] = [tok.id("<eos>"), tok.id("<turn|>")]
    out["vision_config"] = {"model_type": "gemma4_unified_vision", "patch_size": 16, "pooling_kernel_size": 3,
                            "model_patch_size": 48, "mm_embed_dim": cfg["hidden_size"], "mm_posemb_size": 1120,
                            "output_proj_dims": cfg["hidden_size"], "num_soft_tokens": 280, "rms_norm_eps": 1e-6}
    out["audio_config"] = {"model_type": "gemma4_unified_audio", "audio_embed_dim": 640, "hidden_size": 640,
                           "audio_samples_per_token": 640, "output_proj_dims": cfg["hidden_size"], "rms_norm_eps": 1e-6}
    return out


def export_hf(model, tok, directory):
    os.makedirs(directory, exist_ok=True)
    tensors = {n: p.detach().cpu().numpy() for n, p in model.state_dict().items()}
    write_safetensors(os.path.join(directory, "model.safetensors"), tensors)
    for name, obj in (("config.json", hf_config(model.cfg, tok)), ("tokenizer.json", tok.tokenizer_json())):
        with open(os.path.join(directory, name), "w") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": "<f4", "F16": "<f2"}
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        if h["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16
            out[name] = raw.view(np.float32).reshape(h["shape"])
        else:
            out[name] = np.frombuffer(data[a:b], dtype=dtypes[h["dtype"]]).astype(np.float32).reshape(h["shape"])
    return out


def load_hf(directory):
    """The torch model of a directory export_hf wrote (train.py's own shape keys from config.json)."""
    import torch

    import model as gm
    with open(os.path.join(directory, "config.json")) as f:
        c = json.load(f)
    t = c["text_config"]
    rp = t["rope_parameters"]
    cfg = {k: t[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                             "num_attention_heads", "num_key_value_heads", "head_dim", "global_head_dim",
                             "num_global_key_value_heads", "layer_types", "sliding_window",
                             "final_logit_softcapping", "rms_norm_eps")}
    cfg.update({"rope_theta_swa": rp["sliding_attention"]["rope_theta"],
                "rope_theta_full": rp["full_attention"]["rope_theta"],
                "partial_rotary_factor": rp["full_attention"]["partial_rotary_factor"]})
    m = gm.Gemma4Unified(cfg)
    tensors = read_safetensors(os.path.join(directory, "model.safetensors"))
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
    m.eval()
    return m
