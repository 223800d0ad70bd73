#pragma once
// Where the weights come from: a GGUF file or a Hugging Face directory, seen through GGUF names.
#include <memory>
#include <string>
#include <vector>

#include "model/formats/tensor_source.h"
#include "model/gemma4/gemma4_config.h"

namespace rawflow {

// The text model's weights: its tensors (looked up and checked as TensorSource says) and config.
class WeightSource : public TensorSource {
 public:
  virtual const std::vector<TensorRef>& all() const = 0;
  virtual const Gemma4Config& config() const = 0;
  // Size of the files backing the weights, for the resident-memory bound.
  virtual size_t file_bytes() const = 0;
};

}  // namespace rawflow
