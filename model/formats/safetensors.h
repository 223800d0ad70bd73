#pragma once
// Hugging Face safetensors: a memory-mapped reader and a writer.
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [out, in], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"k": "v"}}, then the data section; offsets are relative to its start.
// https://github.com/huggingface/safetensors#format
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/formats/dtype.h"
#include "model/formats/mapped_file.h"
#include "model/formats/tensor_ref.h"

namespace rawflow {

// The safetensors dtype string ("BF16", "F16", "F32") for a type rawflow reads from safetensors.
// Throws EngineError for any other type.
std::string_view safetensors_dtype_name(DType t);

class SafetensorsFile {
 public:
  // Maps and parses the file. Throws ModelFileError naming the file and what is wrong: too short,
  // header length past the end of the file, malformed JSON, a tensor with an unsupported dtype
  // (only BF16, F16, F32), a bad shape, data offsets outside the data section, overlapping tensors,
  // or a byte size that does not match its shape.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  // Offset of the data section: 8 + the JSON header length.
  size_t data_offset() const { return data_offset_; }
  // `__metadata__` (values that are not JSON strings are kept as their JSON text).
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }

  // Tensors in data-offset order. `ne` is the safetensors shape reversed (ggml order); a rank-0
  // tensor gets ne = {1}. Data pointers point into the mapping and may be unaligned.
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find(std::string_view name) const;
  // Shape as written in the file (PyTorch order), for messages.
  std::vector<int64_t> torch_shape(const TensorRef& t) const {
    return std::vector<int64_t>(t.ne.rbegin(), t.ne.rend());
  }

  const uint8_t* map_base() const { return base_; }

 private:
  SafetensorsFile() = default;
  void parse_header();
  std::string path_;
  size_t size_ = 0;
  size_t data_offset_ = 0;
  MappedFile map_;
  const uint8_t* base_ = nullptr;  // map_.data()
  std::map<std::string, std::string, std::less<>> metadata_;
  std::vector<TensorRef> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// Builds a safetensors file in memory and writes it. Tensors are written in the order added.
class SafetensorsWriter {
 public:
  void set_metadata(const std::string& key, std::string value);
  // `shape` in PyTorch order ([out, in] for a linear weight); `nbytes` must equal
  // product(shape) * element size. dtype must be BF16, F16 or F32 (else EngineError).
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                  const void* data, size_t nbytes);
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                  std::vector<uint8_t>&& bytes);
  // Writes the file (throws ModelFileError on I/O failure). The JSON header is padded with spaces
  // to a multiple of 8 bytes, as the reference implementation does, so the data section starts
  // 8-byte aligned.
  void write(const std::string& path) const;

 private:
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<Pending> tensors_;
};

}  // namespace rawflow
