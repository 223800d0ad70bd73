#pragma once
// `rawflow model synth`: random-weight Gemma 4 text models in the released files' exact format
// (spec §7.1, §7.2; safetensors per §1.1 and the HF names of §7.2), and optionally the matching
// vision + audio embedders (spec §3.3, §4): a `clip` mmproj GGUF (§7.3–7.4, §10.5, §10.8) or the
// Google on-disk tensors and `vision_config` / `audio_config` in the safetensors directory. Test
// fixtures for every layer of rawflow and for parity runs against llama.cpp: same names, shapes,
// metadata and dtypes as Google's files, with fewer/smaller layers.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "model/vocab.h"

namespace rawflow {

struct SynthOptions {
  std::string preset = "tiny";
  // 0 = the preset's layers; otherwise this many, laid out as synth_layer_pattern says (e.g. 48 on
  // 12b-2l gives the 12B's full depth and layer types).
  int64_t layers = 0;
  DType dtype = DType::F32;         // matrices (attention, MLP)
  std::optional<DType> embd_dtype;  // token_embd; default: dtype, except Q4_0 -> Q6_K (Google QAT)
  uint64_t seed = 1;
  std::string vocab_path;       // tokenizer.json or .gguf; empty = synthetic vocabulary
  std::string out;              // .gguf file, or a directory for "safetensors"
  std::string format = "gguf";  // "gguf" or "safetensors" (config.json + model.safetensors)
  // Also write the vision and audio embedders. gguf: a separate `clip` file at `mmproj_out`
  // (default: `mmproj-<out's file name>` next to `out`); safetensors: into the same directory.
  bool mmproj = false;
  std::string mmproj_out;
  // gguf: dtype of the position table and both projections (v.patch_embd.weight and the 1-D
  // tensors are always F32, as llama.cpp's converter writes them, §10.5); safetensors: of every
  // embedder tensor (the release stores all in BF16). f32, f16 or bf16.
  DType mmproj_dtype = DType::F32;
};

// Every dimension of a synthetic model. Layer geometry follows the 12B (spec §1.1): sliding layers
// n_head × head_dim_swa with n_kv_head_swa KV heads; full layers n_head × head_dim_full with one
// K=V head and proportional RoPE.
struct SynthPreset {
  std::string name;
  int64_t hidden = 0;
  int64_t ffn = 0;
  int64_t n_head = 0;
  int64_t n_kv_head_swa = 0;
  int64_t n_kv_head_full = 0;
  int64_t head_dim_swa = 0;
  int64_t head_dim_full = 0;
  std::vector<bool> layer_sliding;  // one entry per layer, true = sliding attention
  int64_t sliding_window = 0;
  float rope_theta_swa = 1e4f;
  float rope_theta_full = 1e6f;
  int64_t rope_full_rotated_pairs = 0;  // int(0.25 · head_dim_full / 2)
  int64_t vocab_size = 0;               // of the synthetic vocabulary (a real one overrides it)
  int64_t context_length = 0;
  // Vision embedder: patch embedding width (`mm_embed_dim`; the hidden size on every preset, as
  // on the 12B) and positions per axis of the position table (1120, as released).
  int64_t vision_dim = 0;
  int64_t position_rows = 1120;

  int64_t n_layer() const { return static_cast<int64_t>(layer_sliding.size()); }
};

// Throws EngineError listing the valid names for an unknown preset.
SynthPreset synth_preset(const std::string& name);
// The preset of `o.preset` with `o.layers` applied (and its name suffixed "-<N>l"). Throws
// EngineError for an unknown preset or fewer than 2 layers.
SynthPreset synth_preset(const SynthOptions& o);
// The 12B's layer types for n layers (spec §1.1: five sliding, then one full, repeated): layer i is
// full when i % 6 == 5. Below 6 layers the last one is full, so that both kinds exist (llama.cpp
// refuses a gemma4 file without a sliding layer). Throws EngineError for n < 2.
std::vector<bool> synth_layer_pattern(int64_t n_layers);
std::vector<std::string> synth_preset_names();

// How a tensor's values are drawn (see synth_tensor_values).
enum class SynthInit {
  Embedding,    // token_embd
  Matrix,       // attention and MLP projections
  Norm,         // attn_norm, ffn_norm, output_norm, attn_q_norm
  KNorm,        // attn_k_norm: sets the attention score scale (attention scale is 1.0)
  PostNorm,     // post_attention_norm, post_ffw_norm: block output size vs the residual
  OutputScale,  // layer_output_scale
  RopeFreqs,    // rope_freqs: generated, not random
  // Multimodal embedders (the LayerNorm weights use Norm, patch_dense uses Matrix):
  Bias,                 // LayerNorm biases and the patch_dense bias
  PositionTable,        // the factorized x/y position table
  SoftTokenProjection,  // embedding_projection (vision and audio): sets the soft-token scale
};

struct SynthTensor {
  std::string gguf_name;
  std::string hf_name;      // empty for rope_freqs (not in HF checkpoints)
  std::vector<int64_t> ne;  // ggml order: matrices {in, out}
  SynthInit init = SynthInit::Matrix;
  bool is_matrix() const { return init == SynthInit::Embedding || init == SynthInit::Matrix; }
  int64_t nelements() const;
};

// The tensors of the model in file order (spec §7.2 scaled to the preset's layers:
// 3 + 14 per sliding layer + 13 per full layer).
std::vector<SynthTensor> synth_tensor_plan(const SynthPreset& p, int64_t vocab_size);

// The vision and audio embedder tensors (spec §3.3, §4, §7.4), hf_name = Google's on-disk names.
// `ne` is the HF layout reversed (patch vectors HWC, position table ne {D, 2, P}); the GGUF stores
// patch_ln1 and patch_dense's columns permuted to CHW and the position table as ne {D, P, 2}
// (synth_mmproj_gguf_layout).
std::vector<SynthTensor> synth_mmproj_plan(const SynthPreset& p);
// `hf_values` (in the HF layout of `t`) rearranged into the GGUF layout, and the GGUF shape.
std::vector<float> synth_mmproj_gguf_layout(const SynthTensor& t,
                                            const std::vector<float>& hf_values,
                                            std::vector<int64_t>* gguf_ne = nullptr);

// The F32 values of one tensor, a pure function of (seed, gguf name, preset dims): they do not
// depend on the dtype it is stored in or on any other tensor. 1-D tensors are rounded to the bf16
// grid so that they are exact in every dtype (as the released BF16-origin norms are). Embedder
// tensors come in their HF layout.
std::vector<float> synth_tensor_values(const SynthPreset& p, int64_t vocab_size,
                                       const SynthTensor& t, uint64_t seed);

// The synthetic vocabulary: ids 0–4 `<pad> <eos> <bos> <unk> <mask>`, the Gemma 4 specials
// (spec §1.4, §6), "\n" runs, 256 byte tokens, `▁`, then letters and BPE pieces learnt from a
// built-in English text, up to `size` tokens (at least 512).
Vocab synth_vocab(int64_t size);

struct SynthReport {
  std::vector<std::string> files;  // written paths
  size_t tensor_count = 0;
  size_t bytes = 0;    // of the tensor data
  int64_t params = 0;  // elements of all tensors except the generated rope_freqs
  int64_t vocab_size = 0;
  DType embd_dtype = DType::F32;  // what token_embd was written in
  // The embedder tensors, counted apart from the text model's above.
  size_t mmproj_tensor_count = 0;
  size_t mmproj_bytes = 0;
  int64_t mmproj_params = 0;
  std::vector<std::string> notes;  // e.g. specials a real vocabulary lacks
};

// Writes the model. Throws EngineError for bad options (unknown preset, dtype not storable in the
// format, a row length that is not a multiple of the dtype's block), ModelFileError for I/O.
SynthReport synth_model(const SynthOptions& o);

// Writes only the embedders' `clip` GGUF to `o.mmproj_out` (gguf format only): for measurements
// at the 12B's shapes without writing its multi-GB text model. Same values as synth_model's.
SynthReport synth_mmproj(const SynthOptions& o);

}  // namespace rawflow
