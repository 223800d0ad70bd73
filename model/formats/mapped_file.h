#pragma once
// A whole file mapped read-only (MAP_PRIVATE), unmapped on destruction. Model weights are read
// in place from such a mapping: nothing is copied unless a kernel needs another layout.
#include <cstddef>
#include <cstdint>
#include <string>

namespace rawflow {

class MappedFile {
 public:
  // Throws ModelFileError naming the path when it cannot be opened or is not a regular file. An
  // empty file gives an empty mapping (data() == nullptr): callers say what they expected.
  static MappedFile open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rawflow
