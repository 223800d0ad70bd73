#pragma once
// GGUF v3 (also reads v2): a memory-mapped reader and a writer.
// Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/formats/dtype.h"
#include "model/formats/mapped_file.h"
#include "model/formats/tensor_ref.h"

namespace rawflow {

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars live in one of the scalar fields according to `type`; arrays keep
// their element type in `array_type` and their elements in the vector matching it (integers of any
// width and bools in `ints`, floats in `floats`, strings in `strings`). Nested arrays are rejected
// on read.
struct GgufValue {
  GgufType type = GgufType::UINT32;
  GgufType array_type = GgufType::UINT8;
  int64_t i = 0;   // every integer type and BOOL (UINT64 values above INT64_MAX are rejected)
  double f = 0.0;  // FLOAT32, FLOAT64
  std::string s;   // STRING
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  bool is_integer() const;  // scalar of any integer type
  bool is_float() const;
  size_t array_size() const;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> ne;  // ggml order, ne[0] innermost
  uint64_t offset = 0;      // relative to the start of the data section
  size_t nbytes = 0;
  int64_t nelements() const;
};

class GgufFile {
 public:
  // Maps and parses the file. Throws ModelFileError naming the file and what is wrong: bad magic or
  // version, truncation (with the byte offset), unknown value or tensor type (with the key/tensor),
  // a tensor whose data lies past the end of the file, misaligned offsets, duplicate names.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  size_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters. Missing key or wrong type throws ModelFileError: "<file>: metadata key `k` ...".
  // get_int accepts every integer type; get_float accepts FLOAT32/FLOAT64 (and integers).
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;  // integer or bool arrays
  std::vector<double> get_float_array(std::string_view key) const;
  const std::vector<std::string>& get_string_array(std::string_view key) const;
  // Same, with a default when the key is absent (a present key of the wrong type still throws).
  std::string get_string_or(std::string_view key, std::string def) const;
  int64_t get_int_or(std::string_view key, int64_t def) const;
  double get_float_or(std::string_view key, double def) const;
  bool get_bool_or(std::string_view key, bool def) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Throws ModelFileError "<file>: tensor `name` not found" when absent.
  const GgufTensorInfo& tensor(std::string_view name) const;
  const uint8_t* tensor_data(const GgufTensorInfo& t) const;
  TensorRef ref(const GgufTensorInfo& t) const;

  // Memory of the mapping (for RSS accounting and madvise by weight owners).
  const uint8_t* map_base() const { return base_; }

 private:
  GgufFile() = default;
  std::string path_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t size_ = 0;
  size_t data_offset_ = 0;
  MappedFile map_;
  const uint8_t* base_ = nullptr;  // map_.data()
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF v3 file in memory order and writes it. Tensor data is copied in add_tensor.
class GgufWriter {
 public:
  explicit GgufWriter(size_t alignment = 32) : alignment_(alignment) {}

  void set_string(const std::string& key, std::string v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
  void set_array_u32(const std::string& key, const std::vector<uint32_t>& v);
  void set_array_f32(const std::string& key, const std::vector<float>& v);
  void set_array_bool(const std::string& key, const std::vector<bool>& v);
  void set_array_string(const std::string& key, const std::vector<std::string>& v);
  // Any value (used to copy metadata from another file).
  void set_value(const std::string& key, const GgufValue& v);

  // `data` holds nbytes = dtype_row_bytes(dtype, ne[0]) * rows bytes in the on-disk layout.
  void add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne, const void* data,
                  size_t nbytes);

  // Writes the file (throws ModelFileError on I/O failure).
  void write(const std::string& path) const;

 private:
  size_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> tensors_;
};

}  // namespace rawflow
