#pragma once
// Where the weights come from: a GGUF file or a Hugging Face directory, seen through GGUF names.
#include <memory>
#include <string>
#include <vector>

#include "model/gemma4_config.h"
#include "model/tensor_ref.h"

namespace rawflow {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Tensor by its GGUF name (`blk.3.attn_q.weight`), nullptr when absent.
  virtual const TensorRef* find(const std::string& gguf_name) const = 0;
  virtual const std::vector<TensorRef>& all() const = 0;
  virtual const Gemma4Config& config() const = 0;
  virtual const std::string& path() const = 0;
  // Size of the files backing the weights, for the resident-memory bound.
  virtual size_t file_bytes() const = 0;
};

}  // namespace rawflow
