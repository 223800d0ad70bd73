#pragma once
// Tensor element types, numbered as ggml numbers them (the GGUF on-disk type id).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace rawflow {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

struct DTypeTraits {
  DType type;
  std::string_view name;  // as llama.cpp prints it: "f32", "q4_0", "q6_K", ...
  int64_t block_elems;    // elements per block (1 for plain types)
  size_t block_bytes;     // bytes per block
};

// Traits of a supported type.
const DTypeTraits& dtype_traits(DType t);
// The DType for a ggml type id if rawflow supports it.
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
// Parses "f32", "F16", "bf16", "q8_0", "Q4_K", ... (case-insensitive).
std::optional<DType> dtype_from_name(std::string_view name);
inline std::string_view dtype_name(DType t) { return dtype_traits(t).name; }
// Bytes of `n` consecutive elements; n must be a multiple of the block size.
size_t dtype_row_bytes(DType t, int64_t n);
inline bool dtype_is_quantized(DType t) { return dtype_traits(t).block_elems > 1; }

}  // namespace rawflow
