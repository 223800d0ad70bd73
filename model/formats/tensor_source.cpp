#include "model/formats/tensor_source.h"

#include "model/error.h"
#include "model/formats/gguf.h"

namespace rawflow {

std::string TensorSource::where(const std::string& gguf_name) const {
  return path() + ": tensor `" + gguf_name + "`";
}

std::string TensorSource::missing_name(const std::string& gguf_name) const {
  return "`" + gguf_name + "`";
}

std::string TensorSource::shape_text(const std::vector<int64_t>& ne, bool with_word) const {
  std::string s = with_word ? "ne [" : "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

const TensorRef& require_tensor(const TensorSource& s, const std::string& name,
                                const std::vector<int64_t>& ne, std::string_view needed_by) {
  const TensorRef* t = s.find(name);
  if (!t)
    throw ModelFileError(s.path() + ": tensor " + s.missing_name(name) + " is missing" +
                         (needed_by.empty() ? "" : " (" + std::string(needed_by) + " needs it)"));
  if (t->ne != ne)
    throw ModelFileError(s.where(name) + " has " + s.shape_text(t->ne, true) + ", expected " +
                         s.shape_text(ne, false));
  return *t;
}

const TensorRef& require_float_tensor(const TensorSource& s, const std::string& name,
                                      const std::vector<int64_t>& ne, std::string_view kind,
                                      std::string_view needed_by) {
  const TensorRef* t = s.find(name);
  if (t && t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
    throw ModelFileError(s.where(name) + " is " + std::string(dtype_name(t->dtype)) + "; " +
                         std::string(kind) + " must be f32, f16 or bf16");
  return require_tensor(s, name, ne, needed_by);
}

GgufTensors::GgufTensors(std::unique_ptr<GgufFile> f) : file_(std::move(f)) {
  for (const auto& t : file_->tensors()) refs_.push_back(file_->ref(t));
  for (size_t i = 0; i < refs_.size(); ++i) index_[refs_[i].name] = i;
}

GgufTensors::~GgufTensors() = default;

const TensorRef* GgufTensors::find(const std::string& gguf_name) const {
  auto it = index_.find(gguf_name);
  return it == index_.end() ? nullptr : &refs_[it->second];
}

const std::string& GgufTensors::path() const { return file_->path(); }

}  // namespace rawflow
