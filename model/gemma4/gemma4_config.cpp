#include "model/gemma4/gemma4_config.h"

#include <cmath>

#include "model/error.h"
#include "model/formats/gguf.h"

namespace rawflow {

Gemma4LayerGeometry Gemma4Config::layer(int64_t il) const {
  Gemma4LayerGeometry g;
  g.sliding = layer_sliding.at(static_cast<size_t>(il));
  g.n_head = n_head;
  if (g.sliding) {
    g.n_kv_head = n_kv_head_swa;
    g.head_dim = head_dim_swa;
    g.k_eq_v = false;
    g.rope_theta = rope_theta_swa;
    g.rope_rotated_pairs = head_dim_swa / 2;
  } else {
    g.n_kv_head = n_kv_head_full;
    g.head_dim = head_dim_full;
    g.k_eq_v = full_k_eq_v;
    g.rope_theta = rope_theta_full;
    g.rope_rotated_pairs = rope_full_rotated_pairs;
  }
  return g;
}

namespace {

[[noreturn]] void refuse(const GgufFile& f, const std::string& key, const std::string& why) {
  throw ModelFileError(f.path() + ": metadata key `" + key + "`: " + why);
}

// Proportional RoPE is stored by llama.cpp as a `rope_freqs` factor per frequency pair: 1 where the
// pair rotates, a huge number (1e30) where it must not. Count the leading ones.
int64_t rotated_pairs_from_rope_freqs(const GgufFile& f, int64_t n_pairs) {
  const GgufTensorInfo* t = f.find_tensor("rope_freqs.weight");
  if (!t) return n_pairs;
  if (t->dtype != DType::F32 || t->nelements() != n_pairs)
    throw ModelFileError(f.path() + ": tensor `rope_freqs.weight` must be f32 [" +
                         std::to_string(n_pairs) + "]");
  const auto* v = reinterpret_cast<const float*>(f.tensor_data(*t));
  int64_t n = 0;
  while (n < n_pairs && v[n] == 1.0f) ++n;
  for (int64_t i = n; i < n_pairs; ++i)
    if (!(v[i] > 1e20f))
      throw ModelFileError(f.path() + ": tensor `rope_freqs.weight` entry " + std::to_string(i) +
                           " is neither 1 nor ≥1e20: only proportional RoPE is supported");
  return n;
}

}  // namespace

Gemma4Config Gemma4Config::from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != "gemma4")
    refuse(f, "general.architecture", "is `" + arch + "`; rawflow runs `gemma4` (Gemma 4 unified)");
  const std::string p = "gemma4.";
  Gemma4Config c;
  c.source = f.path();
  c.hidden = f.get_int(p + "embedding_length");
  c.n_layer = f.get_int(p + "block_count");
  c.ffn = f.get_int(p + "feed_forward_length");
  c.n_head = f.get_int(p + "attention.head_count");
  c.context_length = f.get_int_or(p + "context_length", 262144);
  c.head_dim_full = f.get_int(p + "attention.key_length");
  c.head_dim_swa = f.get_int(p + "attention.key_length_swa");
  if (f.get_int_or(p + "attention.value_length", c.head_dim_full) != c.head_dim_full)
    refuse(f, p + "attention.value_length", "must equal key_length");
  if (f.get_int_or(p + "attention.value_length_swa", c.head_dim_swa) != c.head_dim_swa)
    refuse(f, p + "attention.value_length_swa", "must equal key_length_swa");
  c.sliding_window = f.get_int(p + "attention.sliding_window");
  c.rms_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_theta_full = static_cast<float>(f.get_float(p + "rope.freq_base"));
  c.rope_theta_swa = static_cast<float>(f.get_float(p + "rope.freq_base_swa"));
  c.final_logit_softcap = static_cast<float>(f.get_float_or(p + "final_logit_softcapping", 0.0));

  if (f.get_int_or(p + "embedding_length_per_layer_input", 0) != 0)
    refuse(
        f, p + "embedding_length_per_layer_input",
        "per-layer embeddings (PLE) are used by other Gemma 4 sizes, not the 12B; not supported");
  if (f.get_int_or(p + "attention.shared_kv_layers", 0) != 0)
    refuse(f, p + "attention.shared_kv_layers", "KV sharing across layers is not supported");
  if (f.get_int_or(p + "expert_count", 0) != 0)
    refuse(f, p + "expert_count", "mixture-of-experts variants are not supported");

  const auto pattern = f.get_int_array(p + "attention.sliding_window_pattern");
  if (static_cast<int64_t>(pattern.size()) != c.n_layer)
    refuse(f, p + "attention.sliding_window_pattern",
           "has " + std::to_string(pattern.size()) + " entries for " + std::to_string(c.n_layer) +
               " layers");
  c.layer_sliding.assign(pattern.begin(), pattern.end());

  // head_count_kv is an array (per layer) in Gemma 4 files; a scalar applies to sliding layers.
  const GgufValue* kv = f.find(p + "attention.head_count_kv");
  if (!kv) refuse(f, p + "attention.head_count_kv", "missing");
  if (kv->type == GgufType::ARRAY) {
    const auto v = f.get_int_array(p + "attention.head_count_kv");
    if (static_cast<int64_t>(v.size()) != c.n_layer)
      refuse(f, p + "attention.head_count_kv", "array length differs from block_count");
    c.n_kv_head_swa = c.n_kv_head_full = -1;
    for (int64_t il = 0; il < c.n_layer; ++il) {
      int64_t& slot = c.layer_sliding[il] ? c.n_kv_head_swa : c.n_kv_head_full;
      if (slot != -1 && slot != v[il])
        refuse(f, p + "attention.head_count_kv", "differs between layers of the same type");
      slot = v[il];
    }
    if (c.n_kv_head_swa == -1) c.n_kv_head_swa = c.n_head;
    if (c.n_kv_head_full == -1) c.n_kv_head_full = c.n_head;
  } else {
    c.n_kv_head_swa = c.n_kv_head_full = f.get_int(p + "attention.head_count_kv");
  }
  bool any_sliding = false;
  for (bool s : c.layer_sliding) any_sliding |= s;
  if (!any_sliding)
    refuse(f, p + "attention.sliding_window_pattern", "has no sliding layer; Gemma 4 needs one");

  const int64_t rot_full = f.get_int_or(p + "rope.dimension_count", c.head_dim_full);
  const int64_t rot_swa = f.get_int_or(p + "rope.dimension_count_swa", c.head_dim_swa);
  if (rot_full != c.head_dim_full)
    refuse(f, p + "rope.dimension_count",
           "must equal key_length (partial rotation is encoded by rope_freqs)");
  if (rot_swa != c.head_dim_swa)
    refuse(f, p + "rope.dimension_count_swa", "must equal key_length_swa");
  c.rope_full_rotated_pairs = rotated_pairs_from_rope_freqs(f, c.head_dim_full / 2);

  // K = V on full layers is visible as the absence of attn_v there (llama.cpp does the same).
  for (int64_t il = 0; il < c.n_layer; ++il) {
    if (c.layer_sliding[il]) continue;
    c.full_k_eq_v = f.find_tensor("blk." + std::to_string(il) + ".attn_v.weight") == nullptr;
    break;
  }

  const GgufTensorInfo& embd = f.tensor("token_embd.weight");
  if (embd.ne.size() != 2 || embd.ne[0] != c.hidden)
    throw ModelFileError(f.path() + ": tensor `token_embd.weight` must be [" +
                         std::to_string(c.hidden) + ", vocab]");
  c.vocab_size = embd.ne[1];

  c.bos_id = static_cast<int32_t>(f.get_int_or("tokenizer.ggml.bos_token_id", 2));
  c.eos_id = static_cast<int32_t>(f.get_int_or("tokenizer.ggml.eos_token_id", 1));
  if (f.has("tokenizer.ggml.suppress_tokens"))
    for (int64_t id : f.get_int_array("tokenizer.ggml.suppress_tokens"))
      c.suppress_ids.push_back(static_cast<int32_t>(id));
  c.sampling_temp = static_cast<float>(f.get_float_or("general.sampling.temp", 1.0));
  c.sampling_top_p = static_cast<float>(f.get_float_or("general.sampling.top_p", 0.95));
  c.sampling_top_k = static_cast<int32_t>(f.get_int_or("general.sampling.top_k", 64));
  return c;
}

}  // namespace rawflow
