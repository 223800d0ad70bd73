#pragma once
// Opens a model from what users download: a GGUF file (Google's QAT, llama.cpp, unsloth, ollama
// blobs) or a Hugging Face directory (config.json + *.safetensors + tokenizer.json).
#include <memory>
#include <string>

#include "model/formats/weight_source.h"
#include "model/gemma4/gemma4_text.h"
#include "model/tokenizer/tokenizer.h"

namespace rawflow {

// GGUF or HF directory, chosen by what `path` is. Throws ModelFileError naming what is wrong.
std::unique_ptr<WeightSource> open_weights(const std::string& path);

struct LoadedModel {
  std::unique_ptr<Gemma4Text> text;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Loads decoder and tokenizer; suppressed ids come from the file or, when it has none, from the
// vocabulary strings `<image|>` and `<audio|>` (spec §2.10).
LoadedModel load_model(const std::string& path, const LoadOptions& opt = {});

}  // namespace rawflow
