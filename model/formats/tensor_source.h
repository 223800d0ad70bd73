#pragma once
// Tensors looked up by their GGUF names, from a GGUF file or a Hugging Face directory, and the one
// set of checks the text decoder and the multimodal projector load them through. Messages name
// tensors and shapes as the user sees them in that file: GGUF names and ne order for a GGUF, the
// HF names, shard and PyTorch order for a checkpoint directory.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/formats/tensor_ref.h"

namespace rawflow {

class GgufFile;

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // Tensor by its GGUF name (`blk.3.attn_q.weight`), nullptr when absent.
  virtual const TensorRef* find(const std::string& gguf_name) const = 0;
  virtual const std::string& path() const = 0;

  // For messages: a tensor that exists ("FILE: tensor `x`"), a missing one ("`x`"), and a shape
  // given in ggml order ("ne [6912, 256]"; a directory says "shape [256, 6912]").
  virtual std::string where(const std::string& gguf_name) const;
  virtual std::string missing_name(const std::string& gguf_name) const;
  virtual std::string shape_text(const std::vector<int64_t>& ne, bool with_word) const;
};

// The tensor `name`, which must exist with exactly `ne` (ggml order). `needed_by`, when given,
// ends the "missing" message ("… is missing (the vision embedder needs it)").
const TensorRef& require_tensor(const TensorSource& s, const std::string& name,
                                const std::vector<int64_t>& ne, std::string_view needed_by = {});

// The same, and stored as F32, F16 or BF16 (norm vectors, embedder weights: read as floats, never
// through a quantized kernel). `kind` names the tensors in the message ("mmproj tensors").
const TensorRef& require_float_tensor(const TensorSource& s, const std::string& name,
                                      const std::vector<int64_t>& ne, std::string_view kind,
                                      std::string_view needed_by = {});

// Every tensor of a GGUF file, which it keeps open (the TensorRefs point into its mapping).
class GgufTensors : public TensorSource {
 public:
  explicit GgufTensors(std::unique_ptr<GgufFile> f);
  ~GgufTensors() override;
  const TensorRef* find(const std::string& gguf_name) const override;
  const std::string& path() const override;
  const std::vector<TensorRef>& all() const { return refs_; }
  const GgufFile& file() const { return *file_; }

 private:
  std::unique_ptr<GgufFile> file_;
  std::vector<TensorRef> refs_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace rawflow
