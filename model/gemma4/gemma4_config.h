#pragma once
// Hyperparameters of the Gemma 4 "unified" text decoder (spec §1.1, §7.1).
#include <cstdint>
#include <string>
#include <vector>

namespace rawflow {

class GgufFile;

enum class RopeKind { Default, Proportional };

struct Gemma4LayerGeometry {
  bool sliding = true;
  int64_t n_head = 16;
  int64_t n_kv_head = 8;
  int64_t head_dim = 256;
  bool k_eq_v = false;  // full layers of the 12B: no v_proj, V comes from the raw K projection
  float rope_theta = 1e4f;
  int64_t rope_rotated_pairs = 128;  // pairs (i, i + head_dim/2) that rotate, i < this
};

struct Gemma4Config {
  std::string source;  // file the configuration was read from, for messages
  int64_t vocab_size = 262144;
  int64_t hidden = 3840;
  int64_t ffn = 15360;
  int64_t n_layer = 48;
  int64_t n_head = 16;
  int64_t n_kv_head_swa = 8;
  int64_t n_kv_head_full = 1;
  int64_t head_dim_swa = 256;
  int64_t head_dim_full = 512;
  int64_t sliding_window = 1024;
  std::vector<bool> layer_sliding;  // size n_layer, true = sliding attention
  float rope_theta_swa = 1e4f;
  float rope_theta_full = 1e6f;
  // Full layers rotate `rope_full_rotated_pairs` of head_dim_full/2 frequency pairs with exponent
  // denominator head_dim_full (proportional RoPE); 64 on the 12B.
  int64_t rope_full_rotated_pairs = 64;
  bool full_k_eq_v = true;
  float rms_eps = 1e-6f;
  float final_logit_softcap = 30.0f;
  int64_t context_length = 262144;
  // Token ids (spec §1.4, resolved by string from the vocabulary where one is present).
  int32_t bos_id = 2;
  int32_t eos_id = 1;
  std::vector<int32_t> suppress_ids;  // -inf before sampling (spec §2.10)
  // Sampling defaults (general.sampling.*).
  float sampling_temp = 1.0f;
  float sampling_top_p = 0.95f;
  int32_t sampling_top_k = 64;

  Gemma4LayerGeometry layer(int64_t il) const;

  // Reads `gemma4.*` metadata. Throws ModelFileError naming the key for anything missing or
  // inconsistent, and refuses variants the 12B does not use (per-layer embeddings, MoE, KV
  // sharing).
  static Gemma4Config from_gguf(const GgufFile& f);
  // Reads a Hugging Face config.json (`gemma4_unified` with `text_config`, or a bare text config).
  static Gemma4Config from_hf_config(const std::string& config_json_path);
};

}  // namespace rawflow
