#pragma once
// `rawflow model convert`: a Hugging Face Gemma 4 unified checkpoint directory (config.json +
// *.safetensors + tokenizer.json, as Google releases it and as `model synth --format safetensors`
// writes it) into llama.cpp's released layout: the text GGUF and, when the directory holds the
// vision / audio embedders, the `clip` mmproj GGUF. The layout, metadata and dtype rules are
// model/formats/gguf_export.h's, shared with `model synth`: converting a synthesized checkpoint
// gives the bytes `model synth` writes directly in gguf format from the same seed.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/formats/dtype.h"
#include "model/formats/gguf_export.h"
#include "model/gemma4/gemma4_config.h"

namespace rawflow {

struct ConvertOptions {
  std::string hf_dir;
  std::string out;  // the text GGUF
  // The mmproj GGUF (default: `mmproj-<out's file name>` next to `out`); written when the
  // checkpoint has embedders, and then only.
  std::string mmproj_out;
  DType dtype = DType::F32;         // matrices (attention, MLP)
  std::optional<DType> embd_dtype;  // token_embd; default: default_embd_dtype(dtype)
  // Position table and both projections (f32, f16 or bf16; patch_embd and 1-D tensors stay F32).
  DType mmproj_dtype = DType::F32;
};

struct ConvertReport {
  std::vector<std::string> files;  // written paths
  GgufExportStats text;
  GgufExportStats mmproj;  // all 0 when the checkpoint has no embedders
  bool vision = false;
  bool audio = false;
  int64_t vocab_size = 0;  // tokens in the GGUF (the embedding's rows)
  DType embd_dtype = DType::F32;
  std::vector<std::string> notes;  // skipped tensors, padded vocabulary, missing specials
};

// The layout geometry of a checkpoint's text decoder (Gemma4Config::from_hf_config); no embedders
// (has_vision / has_audio false) until their dims are known.
Gemma4Geometry geometry_from_config(const Gemma4Config& cfg);

// Converts `o.hf_dir`. Throws ModelFileError naming the file (and key or tensor) for a directory
// without config.json or tokenizer.json, a bad config, a missing tensor or one of the wrong shape,
// a tokenizer larger than the embedding; EngineError for dtypes that do not fit (row lengths not a
// multiple of the block), before anything is written.
ConvertReport convert_hf_checkpoint(const ConvertOptions& o);

}  // namespace rawflow
