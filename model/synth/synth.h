#pragma once
// `rawflow model synth`: random-weight Gemma 4 text models in the released files' exact format
// (spec §7.1, §7.2; safetensors per §1.1 and the HF names of §7.2), and optionally the matching
// vision + audio embedders (spec §3.3, §4): a `clip` mmproj GGUF (§7.3–7.4, §10.5, §10.8) or the
// Google on-disk tensors and `vision_config` / `audio_config` in the safetensors directory. Test
// fixtures for every layer of rawflow and for parity runs against llama.cpp: same names, shapes,
// metadata and dtypes as Google's files, with fewer/smaller layers. The GGUF layout itself (tensor
// plan, metadata, dtype rules, mmproj permutations) is model/formats/gguf_export.h's, shared with
// `model convert`; this file adds the presets, the random values, the synthetic vocabulary and the
// safetensors checkpoint.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/formats/dtype.h"
#include "model/formats/gguf_export.h"
#include "model/tokenizer/vocab.h"

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

// A synthetic model's geometry (model/formats/gguf_export.h), the preset's name and the size of its
// synthetic vocabulary (a real one overrides it). Every preset uses the 12B's stored constants
// (eps, soft-cap, sampling) and both embedders, with vision_dim = hidden.
struct SynthPreset : Gemma4Geometry {
  std::string name;
  int64_t vocab_size = 0;
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

// The F32 values of one tensor of gguf_text_plan / gguf_mmproj_plan, drawn by its role: a pure
// function of (seed, gguf name, preset dims), so they do not depend on the dtype it is stored in or
// on any other tensor. 1-D tensors are rounded to the bf16 grid so that they are exact in every
// dtype (as the released BF16-origin norms are). Embedder tensors come in their HF layout.
std::vector<float> synth_tensor_values(const SynthPreset& p, int64_t vocab_size,
                                       const PlannedTensor& t, uint64_t seed);

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
